"""issue_74839 on the lab with its nodes reached through ``docker exec`` into kind-like node
containers joined to the lab's namespaces: the same conclusions as the lab's own node access,
every change put back and verified, the containers removed. Needs root, and the lab to itself
(it takes the host-wide lock): the lead runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from connreset.journal import read
from tests.docker.kind import CLUSTER_LABEL, PodmanEngine, build_node_image

pytestmark = [pytest.mark.root, pytest.mark.docker, pytest.mark.slow]
ROOT = Path(__file__).parent.parent.parent


def test_issue_74839_through_docker_concludes_as_the_lab_does(tmp_path: Path) -> None:
    with PodmanEngine(tmp_path / "engine") as engine:
        build_node_image(engine)
        journal = tmp_path / "j.json"
        argv = [
            sys.executable, "-m", "connreset", "experiments/issue_74839.py",
            "--cluster", "tests.docker.lab:lab_with_kind_nodes", "--cluster-opt", "time_scale=0.1",
            "--node-access", "docker", "--node-opt", "cluster=lab",
            "--set", "every=1", "--set", "window=5", "--journal", str(journal),
        ]  # fmt: skip
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=engine.env)
        left = engine.containers(f"{CLUSTER_LABEL}=lab")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = read(journal)
    assert doc["spec"]["node_access"] == "docker"
    concluded = {p: (f["injected"], f["rst"], f["crashloop"]) for p, f in doc["findings"].items()}
    assert concluded == {
        "no-fix": (True, True, True),
        "fix-be-liberal": (True, False, False),
        "fix-drop-invalid": (True, False, False),
    }
    assert doc["undo"] and all(u["status"] == "done" and u["verified"] for u in doc["undo"])
    assert left == []  # the node containers were removed with the lab
    assert os.path.exists(journal)
