"""The journal: its schema, and a usable partial file after the process is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from connreset import Call, Experiment, Phase, SetSysctl, StepContext, run_sync
from connreset.journal import pending_undo, read
from tests.support import FakeBackend

TOP = {
    "experiment",
    "params",
    "backend",
    "outcome",
    "started_at",
    "finished_at",
    "environment",
    "steps",
    "nodes",
    "samples",
    "findings",
    "undo",
}


async def note(ctx: StepContext) -> None:
    ctx.finding("seen", True)
    ctx.sample("node-1", "conntrack_count", 3)


def test_schema(tmp_path: Path) -> None:
    path = tmp_path / "j.json"
    exp = Experiment("j", [Phase("a", SetSysctl("nf_conntrack_max", 1200) >> Call(note))])
    run_sync(exp, FakeBackend(), journal=path)
    doc = read(path)
    assert set(doc) >= TOP
    assert doc["experiment"] == "j" and doc["backend"] == "fake" and doc["outcome"] == "passed"
    assert set(doc["environment"]) >= {"connreset", "python", "kernel"}
    step = doc["steps"][0]
    assert set(step) == {"name", "kind", "phase", "status", "started_at", "duration_s", "detail"}
    assert step["status"] == "ok" and step["phase"] == "a"
    assert doc["nodes"]["node-1"]["sysctl_before"] == {"net.netfilter.nf_conntrack_max": "262144"}
    assert doc["nodes"]["node-1"]["sysctl_after"] == {"net.netfilter.nf_conntrack_max": "262144"}
    assert doc["samples"][0] | {"t": 0} == {"t": 0, "node": "node-1", "metric": "conntrack_count", "value": 3}
    assert doc["findings"] == {"a": {"seen": True}}
    (undo,) = doc["undo"]
    assert {undo[k] for k in ("action", "node", "status", "verified")} == {"sysctl", "node-1", "done", True}
    assert pending_undo(doc) == []


SCRIPT = """
import asyncio, os, sys
sys.path.insert(0, {root!r})
from connreset import *
from tests.support import FakeBackend

async def block(ctx):
    os.write(1, b"ready\\n")
    await asyncio.Event().wait()

exp = Experiment.single("killed", SetSysctl("nf_conntrack_max", 1200) >> Call(block))
run_sync(exp, FakeBackend(), journal={path!r})
"""


def test_partial_journal_after_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "killed.json"
    root = str(Path(__file__).parent.parent)
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT.format(root=root, path=str(path))], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"  # the blocking step runs: the change was made
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    doc = json.loads(path.read_text())
    assert doc["experiment"] == "killed" and doc["outcome"] is None and doc["finished_at"] is None
    (undo,) = pending_undo(doc)
    assert (undo["action"], undo["target"], undo["value"]) == (
        "sysctl",
        "net.netfilter.nf_conntrack_max",
        "262144",
    )
