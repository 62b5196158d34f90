"""The node watchdog over real OpenSSH: started on each node through the node access, it restores
that node's settings by itself once the controller, killed with -9, stops renewing its lease.

The nodes are ``crssh-*`` namespaces behind an sshd each; the cluster is the in-memory test
double (``connreset.testing``), since only the nodes matter here. Needs root."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ssh.sshd import SshFarm
from tests.watchdog.test_lab import journal_lines, wait_for_exit

pytestmark = [pytest.mark.root, pytest.mark.ssh]
ROOT = Path(__file__).parent.parent.parent
LIBERAL = "/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal"
LOOSE = "/proc/sys/net/netfilter/nf_conntrack_tcp_loose"

EXPERIMENT = """
import asyncio, os
from connreset import Call, Experiment, SetSysctl

async def block(ctx):
    os.write(1, b"ready\\n")
    await asyncio.Event().wait()

changes = SetSysctl("nf_conntrack_tcp_be_liberal", 1) >> SetSysctl("nf_conntrack_tcp_loose", 0)
experiment = Experiment.single("killed", changes >> Call(block))
"""


def read_in(namespace: str, path: str) -> str:
    out = subprocess.run(
        ["nsenter", f"--net=/run/netns/{namespace}", "cat", path], capture_output=True, text=True
    )
    return out.stdout.strip()


def test_kill_9_each_nodes_watchdog_restores_it(tmp_path: Path, farm: SshFarm, namespaces: list[str]) -> None:
    before = {ns: (read_in(ns, LIBERAL), read_in(ns, LOOSE)) for ns in namespaces}
    (tmp_path / "killed.py").write_text(EXPERIMENT)
    journal = tmp_path / "j.json"
    argv = [
        sys.executable, "-m", "connreset", "run", str(tmp_path / "killed.py"), "--no-tui",
        "--cluster", "connreset.testing:memory_cluster", "--node-access", "ssh",
        "--node-opt", f"inventory={farm.write_inventory()}", "--watchdog-lease", "2",
        "--journal", str(journal),
    ]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None
    assert b"ready\n" in iter(proc.stdout.readline, b"")  # the console's lines, then the step's
    changed = {ns: (read_in(ns, LIBERAL), read_in(ns, LOOSE)) for ns in namespaces}
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert changed == {ns: ("1", "0") for ns in namespaces}

    armed = [line for line in journal_lines(journal) if line["type"] == "watchdog"]
    assert sorted(str(a["place"]) for a in armed) == ["node-1", "node-2"]
    for a in armed:
        assert a["state"] == "armed" and isinstance(a["pid"], int)
        assert wait_for_exit(a["pid"], 2 + 20), f"{a['place']}'s watchdog did not finish"
    assert {ns: (read_in(ns, LIBERAL), read_in(ns, LOOSE)) for ns in namespaces} == before
    undos = [line["undo"] for line in journal_lines(journal) if line["type"] == "undo_recorded"]
    for a in armed:  # each watchdog applied exactly its own node's undos, each read back
        done = [json.loads(p.read_text()) for p in Path(str(a["detail"]), "done").iterdir()]
        assert sorted(d["id"] for d in done) == sorted(u["id"] for u in undos if u["node"] == a["place"])
        assert all(d["ok"] for d in done)
        subprocess.run(["rm", "-rf", "--", str(a["detail"])], check=True)


def test_a_run_that_ends_leaves_no_watchdog(tmp_path: Path, farm: SshFarm) -> None:
    (tmp_path / "quick.py").write_text(
        "from connreset import Experiment, SetSysctl\n"
        'experiment = Experiment.single("quick", SetSysctl("nf_conntrack_tcp_be_liberal", 1))\n'
    )
    journal = tmp_path / "j.json"
    argv = [
        sys.executable, "-m", "connreset", "run", str(tmp_path / "quick.py"), "--no-tui",
        "--cluster", "connreset.testing:memory_cluster", "--node-access", "ssh",
        "--node-opt", f"inventory={farm.write_inventory()}", "--journal", str(journal),
    ]  # fmt: skip
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    doc = json.loads(journal.read_text())
    assert sorted(doc["watchdogs"]) == ["node-1", "node-2"]
    for place in doc["watchdogs"].values():
        assert place["state"] == "disarmed"
        assert wait_for_exit(place["pid"], 0.0)  # exited already: it never outlives its run
        assert not Path(place["detail"]).exists()
