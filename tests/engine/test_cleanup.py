"""Bounded cleanup: an undo that hangs is left pending within its timeout, and restore finishes it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from connreset import Call, Experiment, SetSysctl, StepContext, run, testing
from connreset.engine.runner import RunCancelled
from connreset.runs.journal import pending_undo, read
from connreset.runs.restore import restore
from connreset.testing import testbed

ROOT = Path(__file__).parent.parent.parent
MAX = "net.netfilter.nf_conntrack_max"
LIBERAL = "net.netfilter.nf_conntrack_tcp_be_liberal"


async def _link_dies(ctx: StepContext) -> None:
    """From now on the node access never answers a write (a dead SSH link, say)."""
    ctx.testbed.access.hang.add("write_file")  # type: ignore[attr-defined]


async def test_a_hung_undo_is_left_pending_and_restore_completes_it(tmp_path: Path) -> None:
    state, journal = str(tmp_path / "nodes.json"), tmp_path / "j.json"
    tb = testbed(state=state)
    exp = Experiment.single(
        "hung",
        SetSysctl("nf_conntrack_max", 1200)
        >> SetSysctl("nf_conntrack_tcp_be_liberal", 1)
        >> Call(_link_dies),
    )
    async with asyncio.timeout(0.5 * 3 + 10):  # both undos time out; the run still ends
        result = await run(exp, tb, journal=journal, undo_timeout=0.5)
    assert result.outcome == "error" and result.exit_code == 3
    assert [u.detail for u in result.undo] == ["timed out after 0.5s"] * 3
    assert result.pending == (
        f"node-2: {LIBERAL}=0",
        f"node-1: {LIBERAL}=0",
        f"node-1: {MAX}=262144",
    )
    doc = read(journal)
    assert [(u["node"], u["target"]) for u in pending_undo(doc)] == [
        ("node-2", LIBERAL),
        ("node-1", LIBERAL),
        ("node-1", MAX),
    ]
    assert doc["pending"] == list(result.pending)
    # a new process would do the same: the journal names the testbed (code only if given again)
    lines, ok = await restore(journal, "connreset.testing:memory_cluster", "connreset.testing:memory_access")
    assert ok, lines
    assert len([line for line in lines if line.startswith("✓")]) == 3
    after = testbed(state=state).access
    assert after.sysctl("node-1", MAX) == "262144" and after.sysctl("node-2", LIBERAL) == "0"


HANGS = """
import asyncio, os
from connreset import *

async def ready(ctx):
    ctx.testbed.access.hang.add("write_file")
    os.write(2, b"ready\\n")
    await asyncio.Event().wait()

experiment = Experiment.single("hang", SetSysctl("nf_conntrack_max", 1200) >> Call(ready))
"""


def test_a_second_ctrl_c_stops_waiting_names_what_is_pending_and_the_journal(tmp_path: Path) -> None:
    path, journal, state = tmp_path / "h.py", tmp_path / "j.json", tmp_path / "nodes.json"
    path.write_text(HANGS)
    argv = [
        sys.executable, "-m", "connreset", str(path),
        "--cluster", "connreset.testing:memory_cluster", "--node-access", "connreset.testing:memory_access",
        "--node-opt", f"state={state}", "--journal", str(journal), "--undo-timeout", "3600",
    ]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    assert proc.stderr.readline() == "ready\n"
    proc.send_signal(2)
    assert proc.stderr.readline().startswith("interrupted: putting everything back")
    proc.send_signal(2)  # the undo hangs (for up to an hour): stop waiting
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert f"node-1: {MAX}=262144" in err
    assert f"connreset restore {journal}" in err
    assert [u["target"] for u in pending_undo(read(journal))] == [MAX]
    done = subprocess.run([sys.executable, "-m", "connreset", "restore", str(journal), *argv[4:8]], cwd=ROOT,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"✓ node-1: {MAX}=262144" in done.stdout


async def test_after_a_second_ctrl_c_the_journal_says_the_watchdog_was_left_to_finish(tmp_path: Path) -> None:
    """F10: after a double Ctrl-C the journal still said the watchdog was ``armed``."""
    from connreset.watchdog import LocalLink, agent

    class Guarded(testing.MemoryNodeAccess):
        def watchdog_links(self, run_id: str, nodes: object = ()) -> dict[str, LocalLink]:
            link = LocalLink(tmp_path / "wd", lambda node, host: None)
            return {n: link for n in ("node-1", "node-2")}

    tb = testing.testbed()
    tb.access.__class__ = Guarded
    journal = tmp_path / "j.json"
    abandon = asyncio.Event()

    async def stop(ctx: StepContext) -> None:
        ctx.testbed.access.hang.add("write_file")  # type: ignore[attr-defined]
        task.cancel()  # the first Ctrl-C: the undos start, and hang
        asyncio.get_running_loop().call_later(0.2, abandon.set)  # the second: stop waiting
        await asyncio.Event().wait()

    exp = Experiment.single("left", SetSysctl("nf_conntrack_max", 1200) >> Call(stop))
    task = asyncio.ensure_future(run(exp, tb, journal=journal, abandon=abandon, watchdog_lease=3600))
    with pytest.raises(RunCancelled) as caught:
        await task
    assert caught.value.result.pending == (f"node-1: {MAX}=262144",)
    place = read(journal)["watchdogs"]["this machine"]
    assert place["state"] == "left" and "renewal stopped" in place["detail"]
    pid = agent.pid_of(str(tmp_path / "wd"))
    assert pid is not None
    agent.disarm(str(tmp_path / "wd"), 10.0)  # this test's own watchdog: no lease to wait for
