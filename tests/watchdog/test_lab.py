"""The lab's watchdog on the real kernel: kill the controller with -9, run nothing else, and the
watchdog alone puts every setting back and removes the lab within its lease (plus a margin)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from connreset.lab import host
from connreset.watchdog import agent

pytestmark = [pytest.mark.root, pytest.mark.slow]

LEASE = 2.0
MARGIN = 20.0  # the watchdog's polling, its undos, and `connreset lab down`
MAX = "net.netfilter.nf_conntrack_max"
LIBERAL = "net.netfilter.nf_conntrack_tcp_be_liberal"

SCRIPT = """
import asyncio, os, sys
from connreset import *

async def block(ctx):
    os.write(1, b"ready\\n")
    await asyncio.Event().wait()

changes = (
    SetSysctl("nf_conntrack_max", 1200)
    >> SetSysctl("nf_conntrack_tcp_be_liberal", 1)
    >> ApplyFix("drop-invalid")
    >> Deploy("web", workloads.http_server(size=1024), replicas=2, port=80)
    >> Call(block)
)
run_sync(Experiment.single("killed", changes), journal=sys.argv[1], watchdog_lease=float(sys.argv[2]))
"""


def wait_for_exit(pid: int, timeout: float) -> bool:
    """Wait for a process that is not our child to end (a pidfd is readable once it has)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(fd)


def journal_lines(path: Path) -> list[dict[str, object]]:
    """A journal's lines (a last one cut short by a kill is left out, as connreset does)."""
    lines = path.read_text().splitlines()
    if lines and not lines[-1].endswith("}"):
        lines.pop()
    return [json.loads(line) for line in lines if line.strip()]


def start_and_kill(tmp_path: Path, lease: float) -> tuple[Path, int]:
    """Run the script until its changes are made, kill it with -9; return the journal and the
    watchdog's pid (from the journal)."""
    journal = tmp_path / "killed.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(journal), str(lease)],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (armed,) = [line for line in journal_lines(journal) if line["type"] == "watchdog"]
    assert armed["state"] == "armed" and armed["lease"] == lease
    pid = armed["pid"]
    assert isinstance(pid, int)
    return journal, pid


def test_kill_9_and_nothing_else_the_watchdog_restores_every_node(tmp_path: Path) -> None:
    max_before = host.read_global(MAX)
    journal, watchdog = start_and_kill(tmp_path, LEASE)
    killed_at = time.monotonic()
    # just after the kill, everything is still changed: the watchdog waits for its lease
    assert host.read_global(MAX) == "1200"
    assert len(host.lab_namespaces()) >= 3
    pods = host.processes_in(host.lab_namespaces())
    assert pods, "the Deployment's pods should be running"

    assert wait_for_exit(watchdog, LEASE + MARGIN), "the watchdog did not finish within lease + margin"
    took = time.monotonic() - killed_at
    assert took >= LEASE * 0.9  # it waited for the lease, not less
    assert host.read_global(MAX) == max_before
    assert host.lab_namespaces() == []  # with the namespaces went their sysctls, rules and veths
    assert [pid for pid in pods if agent.alive(pid)] == [], "a lab process was left"
    # what it did is on record, for people and for `connreset restore`
    (record,) = list(host.watchdog_root().iterdir())
    assert (record / "state").read_text() == "fired"
    done = sorted(json.loads(p.read_text())["id"] for p in (record / "done").iterdir())
    recorded = [line["undo"] for line in journal_lines(journal) if line["type"] == "undo_recorded"]
    node_side = sorted(u["id"] for u in recorded if u["action"] in ("sysctl", "rule"))
    assert done == node_side
    assert all(json.loads(p.read_text())["ok"] for p in (record / "done").iterdir())
    log = [json.loads(line) for line in (record / "log").read_text().splitlines()]
    final = [e for e in log if e["event"] == "final"]
    assert final and final[0]["code"] == 0, final
    agent.remove(str(record))  # the record is for `connreset restore`; this test has read it
    host.watchdog_root().rmdir()


def test_restore_after_the_watchdog_reads_back_and_applies_nothing_twice(tmp_path: Path) -> None:
    journal, watchdog = start_and_kill(tmp_path, LEASE)
    assert wait_for_exit(watchdog, LEASE + MARGIN)
    out = subprocess.run(
        [sys.executable, "-m", "connreset", "restore", str(journal)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    said = out.stdout
    assert said.count("watchdog") >= 4, said  # every node-side undo: read back, not re-applied
    assert "✗" not in said
    assert not host.watchdog_root().exists() or list(host.watchdog_root().iterdir()) == []


def test_restore_before_the_lease_ends_disarms_the_watchdog(tmp_path: Path) -> None:
    journal, watchdog = start_and_kill(tmp_path, 3600.0)
    out = subprocess.run(
        [sys.executable, "-m", "connreset", "restore", str(journal)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert wait_for_exit(watchdog, 15.0), "restore should have disarmed the watchdog"
    assert "✗" not in out.stdout
    assert host.lab_namespaces() == []


def test_restore_after_the_watchdog_opens_nothing_and_writes_nothing(tmp_path: Path) -> None:
    """F8: restore used to rebuild the lab and write every recorded value again (1200 included)."""
    original = host.read_global(MAX)
    journal, watchdog = start_and_kill(tmp_path, LEASE)
    assert wait_for_exit(watchdog, LEASE + MARGIN)
    assert host.read_global(MAX) == original
    moved = str(int(original) + 7)  # changed since by someone else: a restore that writes undoes it
    Path("/proc/sys/net/netfilter/nf_conntrack_max").write_text(moved)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "connreset", "restore", str(journal)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        assert host.read_global(MAX) == moved, "restore wrote a value the watchdog had put back"
    finally:
        Path("/proc/sys/net/netfilter/nf_conntrack_max").write_text(original)
    said = out.stdout.splitlines()
    node_side = [line for line in said if "cluster:" not in line and line.startswith("✓")]
    assert len(node_side) == 5, said  # max, be_liberal on each node, the rule on each node
    assert all("put back by this machine's watchdog" in line for line in node_side), said
    assert any("removed by the watchdog's teardown" in line for line in said), said
    assert "✗" not in out.stdout
    assert host.lab_namespaces() == [] and not (host.STATE_DIR / "lab.json").exists()
    assert not host.watchdog_root().exists() or list(host.watchdog_root().iterdir()) == []


@pytest.mark.parametrize("moment", ["renewing", "0.6 s"])
def test_restore_killed_part_way_leaves_the_machine_to_the_watchdog(tmp_path: Path, moment: str) -> None:
    """F1: restore used to disarm the run's watchdog as it opened the lab, so a restore killed
    0.6 s in left the machine changed with nothing to fix it."""
    original = host.read_global(MAX)
    journal, watchdog = start_and_kill(tmp_path, LEASE)
    restorer = host.watchdog_root() / journal_run_id(journal) / "restorer"
    proc = subprocess.Popen(
        [sys.executable, "-m", "connreset", "restore", str(journal)], start_new_session=True
    )
    if moment == "renewing":  # the moment restore takes the watchdog over
        deadline = time.monotonic() + LEASE
        while not restorer.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert restorer.exists(), "restore did not take the watchdog over within its lease"
    else:  # the moment of the report: part-way through the lab restore reopens
        time.sleep(0.6)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert wait_for_exit(watchdog, LEASE + MARGIN), "the watchdog did not take over"
    assert host.read_global(MAX) == original
    assert host.lab_namespaces() == []
    if host.watchdog_root().exists():  # killed: the watchdog's record (done: restore removed it)
        for d in host.watchdog_root().iterdir():
            agent.remove(str(d))
        host.watchdog_root().rmdir()


def journal_run_id(journal: Path) -> str:
    (started,) = [line for line in journal_lines(journal) if line["type"] == "run_started"]
    run_id = started["run_id"]
    assert isinstance(run_id, str)
    return run_id
