"""issue_74839 on the lab with its nodes reached through ``docker exec`` into kind-like node
containers joined to the lab's namespaces: the same conclusions as the lab's own node access,
every change put back and verified. Needs root, and the lab to itself (the host-wide lock).

The containers join a namespace when they start, so the nodes must exist first: ``connreset lab
up`` builds them, the containers join them, and the run adopts them (and removes them at its end).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from connreset.runs.journal import read
from tests.docker.kind import CLUSTER_LABEL, KindNodes, PodmanEngine, build_node_image

pytestmark = [pytest.mark.root, pytest.mark.docker, pytest.mark.slow]
ROOT = Path(__file__).parent.parent.parent
NODES = {"node-1": "crlab-node-1", "node-2": "crlab-node-2"}


@contextmanager
def kind_nodes_on_the_lab(root: Path) -> Iterator[PodmanEngine]:
    """``connreset lab up``, then node containers named like the lab's nodes joined to them."""
    with PodmanEngine(root) as engine:
        build_node_image(engine)
        up = subprocess.run(
            [sys.executable, "-m", "connreset", "lab", "up"], cwd=ROOT, capture_output=True, text=True
        )
        assert up.returncode == 0, up.stderr
        try:
            with KindNodes(engine, "lab", NODES):
                yield engine
        finally:  # the run removed the nodes; if it did not get that far, remove them here
            subprocess.run([sys.executable, "-m", "connreset", "lab", "down"], cwd=ROOT, capture_output=True)
        assert engine.containers(f"{CLUSTER_LABEL}=lab") == []


def test_issue_74839_through_docker_concludes_as_the_lab_does(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    journal = tmp_path / "j.json"
    # podman refuses a run root longer than 50 characters: a short directory of the session's
    with kind_nodes_on_the_lab(tmp_path_factory.mktemp("lab")) as engine:
        argv = [
            sys.executable, "-m", "connreset", "experiments/issue_74839.py",
            "--cluster", "lab", "--node-access", "docker", "--node-opt", "cluster=lab",
            "--set", "every=1", "--set", "window=5", "--journal", str(journal),
        ]  # fmt: skip
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=engine.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = read(journal)
    assert doc["spec"]["node_access"] == "docker" and doc["testbed"] == "lab+docker"
    concluded = {p: (f["injected"], f["rst"], f["crashloop"]) for p, f in doc["findings"].items()}
    assert concluded == {
        "no-fix": (True, True, True),
        "fix-be-liberal": (True, False, False),
        "fix-drop-invalid": (True, False, False),
    }
    assert doc["undo"] and all(u["status"] == "done" and u["verified"] for u in doc["undo"])
    # like kind's node images, the test image has no python3: no watchdog there, said plainly
    assert sorted(doc["watchdogs"]) == ["node-1", "node-2"]
    for said in doc["watchdogs"].values():
        assert said["state"] == "unavailable" and "it needs python3 ≥ 3.8" in said["detail"], said


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
    with kind_nodes_on_the_lab(tmp_path_factory.mktemp("lab")) as engine:
        argv = [
            sys.executable, "-m", "connreset", str(path), "--cluster", "lab", "--node-access", "docker",
            "--node-opt", "cluster=lab", "--node-opt", "host_sysctls=allow", "--journal", str(journal),
        ]  # fmt: skip
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=engine.env)
        helpers = engine.containers("connreset.io/role=host-sysctl")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"nf_conntrack_max: {before} → 4321" in proc.stdout
    doc = read(journal)
    assert [(u["target"], u["verified"]) for u in doc["undo"] if "max" in u["target"]] == [
        ("net.netfilter.nf_conntrack_max", True)
    ]
    assert Path("/proc/sys/net/netfilter/nf_conntrack_max").read_text().strip() == before
    assert helpers == []  # the helper went with the run
