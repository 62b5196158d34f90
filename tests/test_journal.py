"""The journal: lines while a run goes, the summary document at its end, and a failing disk."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from connreset import Call, Experiment, Phase, SetSysctl, StepContext, ValidationError, events, run, run_sync
from connreset.engine.runner import run_on
from connreset.experiment.plan import build
from connreset.runs.journal import JournalWriter, pending_undo, read
from connreset.testing import testbed

TOP = {
    "watchdogs",
    "schema",
    "experiment",
    "run_id",
    "params",
    "testbed",
    "spec",
    "outcome",
    "cancelled",
    "started_at",
    "finished_at",
    "environment",
    "phases",
    "steps",
    "nodes",
    "samples",
    "findings",
    "undo",
    "pending",
    "claims",
    "description",
}
MAX = "net.netfilter.nf_conntrack_max"
BUCKETS = "net.netfilter.nf_conntrack_buckets"


async def note(ctx: StepContext) -> None:
    ctx.finding("seen", True)
    ctx.sample("node-1", "conntrack_count", 3)


def test_schema(tmp_path: Path) -> None:
    path = tmp_path / "j.json"
    exp = Experiment("j", [Phase("a", SetSysctl("nf_conntrack_max", 1200) >> Call(note))])
    run_sync(exp, testbed(), journal=path)
    doc = read(path)
    assert set(doc) == TOP
    assert json.loads(path.read_text()) == doc  # the summary document, not lines
    assert doc["experiment"] == "j" and doc["testbed"] == "memory" and doc["outcome"] == "passed"
    assert doc["spec"]["cluster"] == "connreset.testing:memory_cluster"
    assert set(doc["environment"]) >= {"connreset", "python", "kernel"}
    step = doc["steps"][0]
    assert set(step) == {"name", "kind", "phase", "status", "started_at", "duration_s", "detail", "t"}
    assert step["status"] == "ok" and step["phase"] == "a"
    (phase,) = doc["phases"]
    assert set(phase) == {"name", "status", "started_t", "finished_t"}
    assert 0 <= phase["started_t"] <= step["t"] <= phase["finished_t"]
    assert doc["nodes"]["node-1"]["sysctl_before"] == {MAX: "262144"}
    assert doc["nodes"]["node-1"]["sysctl_after"] == {MAX: "262144"}
    assert doc["samples"][0] | {"t": 0} == {"t": 0, "node": "node-1", "metric": "conntrack_count", "value": 3}
    assert doc["findings"] == {"a": {"seen": True}}
    (undo,) = doc["undo"]
    assert {undo[k] for k in ("action", "node", "status", "verified")} == {"sysctl", "node-1", "done", True}
    assert undo["run_id"] == doc["run_id"]
    assert pending_undo(doc) == []


def test_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "j.json"
    run_sync(Experiment.single("p", SetSysctl("nf_conntrack_max", 1200)), testbed(), journal=path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == ["j.json"]  # no temporary file left


def test_a_journal_that_cannot_be_created_is_refused_before_anything_runs(tmp_path: Path) -> None:
    tb = testbed()
    (tmp_path / "dir").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    for bad in (tmp_path / "dir", tmp_path / "link", Path("/proc/nope/j.json")):
        with pytest.raises(ValidationError, match="cannot write it"):
            run_sync(Experiment.single("r", SetSysctl("nf_conntrack_max", 1200)), tb, journal=bad)
    assert tb.access.calls == [] and not (tmp_path / "elsewhere").exists()


SCRIPT = """
import asyncio, os, sys
sys.path.insert(0, {root!r})
from connreset import *
from connreset.testing import testbed

async def block(ctx):
    os.write(1, b"ready\\n")
    await asyncio.Event().wait()

exp = Experiment.single("killed", SetSysctl("nf_conntrack_max", 1200) >> Call(block))
run_sync(exp, testbed(), journal={path!r})
"""


def test_lines_after_kill_9_hold_every_undo(tmp_path: Path) -> None:
    path = tmp_path / "killed.json"
    root = str(Path(__file__).parent.parent)
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT.format(root=root, path=str(path))], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"  # the blocking step runs: the change was made
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first = json.loads(path.read_text().splitlines()[0])
    assert first["type"] == "run_started"  # lines, not a document: the run never finished
    doc = read(path)
    assert doc["experiment"] == "killed" and doc["outcome"] is None and doc["finished_at"] is None
    (undo,) = pending_undo(doc)
    assert (undo["action"], undo["target"], undo["value"]) == ("sysctl", MAX, "262144")


def test_a_line_cut_short_by_a_kill_is_ignored_and_garbage_is_refused(tmp_path: Path) -> None:
    good = json.dumps({"type": "run_started", "experiment": "x", "params": {}, "testbed": "lab", "at": "t",
                       "environment": {}, "phases": ["a"]})  # fmt: skip
    cut = tmp_path / "cut.json"
    cut.write_text(good + '\n{"type": "undo_rec')
    assert read(cut)["experiment"] == "x"
    bad = tmp_path / "bad.json"
    bad.write_text("not json\n" + good + "\n")
    with pytest.raises(ValidationError, match=r"bad\.json:1: not a connreset journal line"):
        read(bad)


class FullDisk(JournalWriter):
    """A real journal file whose durable writes start failing, as on a full disk."""

    full = False

    def write(self, event: events.Event, *, durable: bool = False) -> None:
        if self.full and durable:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        super().write(event, durable=durable)


async def test_a_change_whose_undo_cannot_be_written_is_not_made(tmp_path: Path) -> None:
    tb = testbed()
    writer = FullDisk(tmp_path / "j.json")

    async def fill(ctx: StepContext) -> None:
        writer.full = True

    exp = Experiment.single(
        "full",
        SetSysctl("nf_conntrack_max", 1200) >> Call(fill) >> SetSysctl("nf_conntrack_buckets", 1024),
    )
    async with tb:
        result = await run_on(tb, build(exp), journal=writer)
    assert result.outcome == "error" and result.exit_code == 3
    assert "No space left on device" in result.steps[-1].detail
    assert "the change was not made" in result.steps[-1].detail
    written = [c[2] for c in tb.access.calls if c[0] == "write_file"]
    assert not any(p.endswith("nf_conntrack_buckets") for p in written)
    assert tb.access.sysctl("node-1", MAX) == "262144"  # the change before it was put back
    assert tb.access.sysctl("node-1", BUCKETS) == "262144"


async def test_run_writes_a_journal_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    await run(Experiment.single("none", SetSysctl("nf_conntrack_max", 1200)), testbed())
    assert list(tmp_path.iterdir()) == []


def test_the_clusters_own_fingerprint_goes_into_the_journal(tmp_path: Path) -> None:
    tb = testbed()
    tb.cluster.fingerprint = lambda: {"kubernetes": "v1.31.0", "kube-proxy": {"mode": "iptables"}}  # type: ignore[attr-defined]
    run_sync(Experiment.single("fp", SetSysctl("nf_conntrack_max", 1200)), tb, journal=tmp_path / "j.json")
    env = read(tmp_path / "j.json")["environment"]
    assert env["cluster"] == {"kubernetes": "v1.31.0", "kube-proxy": {"mode": "iptables"}}
    assert env["kernel"]  # next to connreset's own


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\xff\xfe", "not UTF-8 text"),
        (b'{"schema": 2}', "no experiment"),
        (b'{"schema": 2, "experiment": "x", "undo": 5}', "undo is int"),
        (b'{"schema": 2, "experiment": "x", "undo": [1]}', r"undo\[0\] is malformed"),
        (b'{"schema": 2, "experiment": "x", "undo": [{"id": "1"}]}', r"undo\[0\]"),
        (b'{"schema": 2, "experiment": "x", "cancelled": 1}', "cancelled is int"),
        (b'{"schema": true, "experiment": "x"}', "schema is bool"),
        (b'{"schema": 2, "experiment": "x", "pending": [{}]}', r"pending\[0\]"),
        (b'{"type": "run_started"}\n', r":1: not a connreset journal line \(KeyError: 'experiment'\)"),
        (b'{"type": "undo_recorded", "undo": 7}\n{"type": "x"}\n', ":1: not a connreset journal line"),
        (b"[" * 100_000 + b"\n", "no run_started line"),
    ],
)
def test_corrupt_journals_are_refused_in_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "j.json"
    path.write_bytes(content)
    with pytest.raises(ValidationError, match=message) as info:
        read(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_a_summary_without_some_fields_gets_their_defaults(tmp_path: Path) -> None:
    path = tmp_path / "j.json"
    path.write_text('{"schema": 2, "experiment": "x", "undo": []}')
    doc = read(path)
    assert doc["experiment"] == "x" and doc["pending"] == [] and doc["steps"] == []
