"""issue_74839 on the lab with its nodes reached over real OpenSSH: the same conclusions as the
lab's own node access, every change put back and verified. Needs root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from connreset.runs.journal import read
from tests.ssh.sshd import SshFarm

pytestmark = [pytest.mark.root, pytest.mark.ssh]
ROOT = Path(__file__).parent.parent.parent


def test_issue_74839_over_ssh_concludes_as_the_lab_does(tmp_path: Path) -> None:
    # each sshd's ForceCommand enters a lab node's namespace by name when a command arrives, so
    # the namespaces the run's lab builds are the ones reached
    nodes = {"node-1": "crlab-node-1", "node-2": "crlab-node-2"}
    with SshFarm(tmp_path / "farm", nodes) as farm:
        inventory = farm.write_inventory()
        journal = tmp_path / "j.json"
        argv = [
            sys.executable, "-m", "connreset", "experiments/issue_74839.py",
            "--cluster", "lab", "--node-access", "ssh",
            "--node-opt", f"inventory={inventory}", "--node-opt", "shares_kernel=true",
            "--set", "every=1", "--set", "window=5", "--journal", str(journal),
        ]  # fmt: skip
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
        accepted = {name: s.accepted() for name, s in farm.sshd.items()}
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = read(journal)
    assert doc["spec"]["node_access"] == "ssh" and doc["testbed"] == "lab+ssh"
    concluded = {p: (f["injected"], f["rst"], f["crashloop"]) for p, f in doc["findings"].items()}
    assert concluded == {
        "no-fix": (True, True, True),
        "fix-be-liberal": (True, False, False),
        "fix-drop-invalid": (True, False, False),
    }
    assert doc["undo"] and all(u["status"] == "done" and u["verified"] for u in doc["undo"])
    assert accepted == {"node-1": 1, "node-2": 1}  # one connection per node, for the whole run
