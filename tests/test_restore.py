"""``connreset restore`` is safe to feed: a journal is data, never code. A forged or corrupt
journal is refused with exit 2 and one line before any testbed is built or opened; for a key
changed several times only the original value is written back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connreset import Call, Experiment, SetSysctl, StepContext, run, testing
from connreset.runs.journal import pending_undo, read
from connreset.runs.restore import restore
from connreset.ui.cli import main
from tests.conftest import Touched
from tests.reliability_figures import tally

MAX = "net.netfilter.nf_conntrack_max"
LIBERAL = "net.netfilter.nf_conntrack_tcp_be_liberal"
MEMORY = ("connreset.testing:memory_cluster", "connreset.testing:memory_access")


def journal(tmp: Path, undo: list[dict[str, object]], spec: dict[str, object] | None = None) -> Path:
    path = tmp / "j.json"
    doc = {
        "schema": 2,
        "experiment": "x",
        "run_id": "r1",
        "spec": spec or {"cluster": "lab"},
        "undo": [{"run_id": "r1", **u} for u in undo],
    }
    path.write_text(json.dumps(doc))
    return path


def sysctl(value: str, node: str = "node-1", key: str = MAX, id: int = 1) -> dict[str, object]:
    return {"id": id, "action": "sysctl", "node": node, "target": key, "value": value}


FORGED = {
    "an unknown node": (sysctl("262144", node="rel-victim"), "unknown node 'rel-victim'"),
    "an unknown key": (sysctl("1", key="kernel.panic"), "unknown sysctl key"),
    "no limit": (sysctl("0"), "must be an integer from 1"),
    "a max that drops every flow": (sysctl("1"), "does not put back a max below 64"),
    "a max just below the floor": (sysctl("63"), "does not put back a max below 64"),
    "a flag out of range": (sysctl("7", key=LIBERAL), "must be 0 or 1"),
    "a max beyond the kernel's": (sysctl(str(2**31)), "must be an integer from 1 to 2147483647"),
    "a rule connreset never adds": (
        {
            "id": 1,
            "action": "rule",
            "node": "node-1",
            "target": "x",
            "rule": {"table": "filter", "chain": "INPUT", "args": ["-j", "ACCEPT"]},
        },
        "connreset makes no such rule",
    ),
    "a scale on a node": (
        {"id": 1, "action": "scale", "node": "node-1", "target": "web", "value": "2"},
        "is the cluster's",
    ),
    "a deployment that is not a name": (
        {"id": 1, "action": "delete-deployment", "node": "cluster", "target": "../etc"},
        "is not a deployment name",
    ),
    "another run's record": ({**sysctl("262144"), "run_id": "r2"}, "belongs to run 'r2'"),
}


@pytest.mark.parametrize("case", sorted(FORGED))
def test_a_forged_undo_is_refused_before_any_testbed_is_built(
    tmp_path: Path, case: str, untouchable: Touched, capsys: pytest.CaptureFixture[str]
) -> None:
    entry, said = FORGED[case]
    path = journal(tmp_path, [entry])
    assert main(["restore", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, err
    assert err.startswith(f"connreset: {path}: undo #1") and said in err, err
    assert untouchable == []
    tally("forged", case=case, code=2, untouched=True)


def test_a_journals_module_factory_is_refused_unless_given_again(
    tmp_path: Path, untouchable: Touched, capsys: pytest.CaptureFixture[str]
) -> None:
    """A forged journal naming ``subprocess:getoutput`` once ran a command as root."""
    marker = tmp_path / "ran"
    spec = {"cluster": "subprocess:getoutput", "cluster_options": {"cmd": f"touch {marker}"}}
    path = journal(tmp_path, [sysctl("262144")], spec)
    assert main(["restore", str(path)]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and "'subprocess:getoutput', which is code" in err, err
    assert "--cluster subprocess:getoutput" in err
    assert not marker.exists()
    assert untouchable == []
    tally("forged", case="a module:factory only the journal names", code=2, untouched=True)


@pytest.mark.parametrize(
    "cluster",
    ["os:getcwd", "sys:exit", "no.such.module:factory", "connreset:__version__", "json:loads"],
)
def test_a_module_factory_on_the_command_line_that_fails_is_one_line(
    tmp_path: Path, cluster: str, untouchable: Touched, capsys: pytest.CaptureFixture[str]
) -> None:
    path = journal(tmp_path, [sysctl("262144")])
    assert main(["restore", str(path), "--cluster", cluster]) == 2
    _, err = capsys.readouterr()
    assert err.startswith("connreset: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert main(["run", "experiments/issue_74839.py", "--dry-run", "--cluster", cluster]) == 2
    _, err = capsys.readouterr()
    assert err.startswith("connreset: ") and err.count("\n") == 1, err
    assert untouchable == []


async def _stuck(ctx: StepContext) -> None:
    ctx.testbed.access.hang.add("write_file")  # type: ignore[attr-defined]


async def test_a_key_changed_several_times_is_put_back_once_to_its_original(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, path = str(tmp_path / "nodes.json"), tmp_path / "j.json"
    exp = Experiment.single(
        "twice",
        SetSysctl("nf_conntrack_max", 1200) >> SetSysctl("nf_conntrack_max", 600) >> Call(_stuck),
    )
    result = await run(exp, testing.testbed(state=state), journal=path, undo_timeout=0.2)
    assert len(result.pending) == 2  # both undos of the max hung: a killed run leaves as much
    assert [u["value"] for u in pending_undo(read(path))] == ["1200", "262144"]

    written: list[tuple[str, str]] = []
    real = testing.MemoryNodeAccess.write_file

    async def spy(self: testing.MemoryNodeAccess, node: str, p: str, data: str, **kw: bool) -> None:
        written.append((p, data))
        await real(self, node, p, data, **kw)

    monkeypatch.setattr(testing.MemoryNodeAccess, "write_file", spy)
    lines, ok = await restore(path, *MEMORY)
    assert ok, lines
    assert written == [("/proc/sys/net/netfilter/nf_conntrack_max", "262144")]  # 1200 is never written
    assert lines[0].startswith(f"· node-1: {MAX}=1200 (not applied: #1 puts back the original")
    assert lines[1].startswith(f"✓ node-1: {MAX}=262144")
    assert testing.testbed(state=state).access.sysctl("node-1", "nf_conntrack_max") == "262144"
