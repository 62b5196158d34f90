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


def test_issue_74839_through_docker_concludes_as_the_lab_does(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # podman refuses a run root longer than 50 characters: a short directory of the session's
    with PodmanEngine(tmp_path_factory.mktemp("lab")) as engine:
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


HOST_SYSCTL = """
from connreset import *

experiment = Experiment.single(
    "through-the-helper",
    SetSysctl("nf_conntrack_max", 4321) >> SetSysctl("nf_conntrack_tcp_be_liberal", 1) >> Observe(0.5),
)
"""


def test_machine_wide_sysctls_through_the_helper_container_are_put_back(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """With ``host_sysctls=allow`` the machine-wide max is written by a privileged helper container
    in the host's network namespace, made from the local node image; the undo puts it back."""
    path, journal = tmp_path / "h.py", tmp_path / "j.json"
    path.write_text(HOST_SYSCTL)
    before = Path("/proc/sys/net/netfilter/nf_conntrack_max").read_text().strip()
    with PodmanEngine(tmp_path_factory.mktemp("lab")) as engine:
        build_node_image(engine)
        argv = [
            sys.executable, "-m", "connreset", str(path),
            "--cluster", "tests.docker.lab:lab_with_kind_nodes", "--node-access", "docker",
            "--node-opt", "cluster=lab", "--node-opt", "host_sysctls=allow", "--journal", str(journal),
        ]  # fmt: skip
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=engine.env)
        left = engine.containers(f"{CLUSTER_LABEL}=lab")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "nf_conntrack_max: " + before + " → 4321" in proc.stdout
    doc = read(journal)
    assert [(u["target"], u["verified"]) for u in doc["undo"] if "max" in u["target"]] == [
        ("net.netfilter.nf_conntrack_max", True)
    ]
    assert Path("/proc/sys/net/netfilter/nf_conntrack_max").read_text().strip() == before
    assert left == []
