"""`connreset doctor --cluster lab` on the lab `connreset lab up` left, on the real kernel: what
it finds, and that every node's iptables-save and sysctls are byte-identical before and after.
Over real sshd into the same namespaces, the same findings. Needs root."""

from __future__ import annotations

import difflib
import json
import platform
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connreset.lab import host
from tests.ssh.sshd import SshFarm, have_sshd

pytestmark = [pytest.mark.root]
ROOT = Path(__file__).parent.parent.parent
NODES = {"node-1": "crlab-node-1", "node-2": "crlab-node-2"}


@pytest.fixture
def lab_up() -> Iterator[None]:
    """`connreset lab up`, held (the lab's own lock) so that no run elsewhere adopts and removes
    it meanwhile; `connreset lab down` at the end."""
    subprocess.run(
        [sys.executable, "-m", "connreset", "lab", "up"], cwd=ROOT, check=True, capture_output=True
    )
    lock = host.HostLock()
    try:
        lock.acquire()
        yield
    finally:
        lock.release()
        subprocess.run([sys.executable, "-m", "connreset", "lab", "down"], cwd=ROOT, capture_output=True)


def snapshot(counters: bool = False) -> dict[str, str]:
    """Every node's iptables-save and every netfilter sysctl but the count. Packet counters are
    left out unless asked for: the kernel's own packets move them (a fresh link's IGMP reports
    pass PREROUTING), whatever the doctor does."""
    out = {}
    for node, ns in NODES.items():
        save = ["iptables-save", "-c"] if counters else ["iptables-save"]
        rules = subprocess.run(["ip", "netns", "exec", ns, *save], capture_output=True, text=True)
        sysctls = subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-a"], capture_output=True, text=True)
        kept = [line for line in rules.stdout.splitlines(True) if not line.startswith("#")]
        if not counters:
            kept = [re.sub(r" \[\d+:\d+\]$", "", line.rstrip("\n")) + "\n" for line in kept]
        kept += [
            line
            for line in sysctls.stdout.splitlines(True)
            if ("netfilter" in line or "ip_forward" in line) and "nf_conntrack_count" not in line
        ]
        out[node] = "".join(kept)
    return out


def same(before: dict[str, str], after: dict[str, str]) -> str:
    """What differs, as a diff (empty: nothing)."""
    return "".join(
        "".join(difflib.unified_diff(before[n].splitlines(True), after[n].splitlines(True), n, n))
        for n in before
    )


def doctor(*extra: str) -> tuple[int, dict[str, Any]]:
    argv = [
        sys.executable,
        "-m",
        "connreset",
        "doctor",
        "--cluster",
        "lab",
        "--window",
        "2",
        "--json",
        *extra,
    ]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def checks(doc: dict[str, Any], node: str) -> dict[str, dict[str, Any]]:
    [found] = [n for n in doc["nodes"] if n["node"] == node]
    return {c["name"]: c for c in found["checks"]}


def test_node_1_is_exposed_until_be_liberal_and_nothing_changes(lab_up: None, tmp_path: Path) -> None:
    before = snapshot()
    code, doc = doctor("--journal", str(tmp_path / "1.json"))
    assert not same(before, snapshot())
    assert code == 1
    node1 = checks(doc, "node-1")
    assert node1["kube-proxy"]["value"] == "iptables, no INVALID drop in KUBE-FORWARD"
    assert (node1["be_liberal"]["value"], node1["be_liberal"]["verdict"]) == ("0", "exposed")
    assert (node1["kernel"]["value"], node1["kernel"]["verdict"]) == (platform.release(), "exposed")
    assert doc["exposed"]["invalid-reset"] == ["node-1", "node-2"]
    assert doc["created"] == [] and doc["testbed"] == "lab"

    for ns in NODES.values():
        subprocess.run(
            ["ip", "netns", "exec", ns, "sysctl", "-w", "net.netfilter.nf_conntrack_tcp_be_liberal=1"],
            check=True,
            capture_output=True,
        )
    before = snapshot()
    code, doc = doctor("--journal", str(tmp_path / "2.json"))
    assert not same(before, snapshot())
    assert "invalid-reset" not in doc["exposed"]
    assert checks(doc, "node-1")["be_liberal"]["verdict"] == "ok"
    assert code == 0, doc["exposed"]


@pytest.mark.ssh
@pytest.mark.skipif(not have_sshd(), reason="needs OpenSSH's sshd")
def test_over_real_sshd_the_same_findings(lab_up: None, tmp_path: Path) -> None:
    _, direct = doctor("--journal", str(tmp_path / "1.json"))
    before = snapshot()
    with SshFarm(tmp_path / "farm", NODES) as farm:
        inventory = farm.write_inventory()
        options = ["--node-opt", f"inventory={inventory}", "--node-opt", "shares_kernel=true"]
        _, over_ssh = doctor("--node-access", "ssh", *options, "--journal", str(tmp_path / "2.json"))
    assert not same(before, snapshot())
    assert over_ssh["testbed"] == "lab+ssh"
    for node in NODES:
        a, b = checks(direct, node), checks(over_ssh, node)
        assert {k: c["verdict"] for k, c in a.items()} == {k: c["verdict"] for k, c in b.items()}
        for name in ("kernel", "kube-proxy", "be_liberal", "hash-ratio", "timeouts", "table-full"):
            assert a[name]["value"] == b[name]["value"], name
    assert direct["exposed"] == over_ssh["exposed"]


def test_a_saturated_node_with_buckets_at_max_over_8(lab_up: None, tmp_path: Path) -> None:
    # the table's machine-wide size, as blog_repro's squeeze sets it (saved first; `lab down`
    # puts them back): max 4,096 over 512 buckets (the kernel's smallest hash, one page of heads)
    host.write_global("nf_conntrack_max", "4096")
    host.write_global("nf_conntrack_buckets", "512")
    flood = subprocess.Popen(
        ["ip", "netns", "exec", "crlab-node-1", sys.executable, str(ROOT / "tests/doctor/flood.py")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert flood.stdout is not None
        assert flood.stdout.readline().strip() == "full"  # the table refuses new flows from here on
        before = snapshot()
        code, doc = doctor("--journal", str(tmp_path / "1.json"))
        assert not same(before, snapshot())
    finally:
        flood.terminate()
        flood.wait()
    assert code == 1
    node1 = checks(doc, "node-1")
    counters, new, headroom = node1["counters"], node1["new-flows"], node1["headroom"]
    assert counters["verdict"] == "exposed" and counters["data"]["drop_per_second"] > 0, counters
    assert headroom["verdict"] == "exposed" and headroom["data"]["peak"] >= 4096 * 0.95, headroom
    assert new["verdict"] == "at risk" and new["data"]["recommended_max"] > 4096, new
    assert f"conntrack.min: {new['data']['recommended_max']}" in new["fix"]
    assert node1["table-full"]["verdict"] == "exposed", node1["table-full"]
    ratio = node1["hash-ratio"]
    assert (
        ratio["verdict"] == "at risk"
        and ratio["data"]["ratio"] == 8.0
        and "sweep_hash_ratio.py" in ratio["why"]
    )
    assert set(doc["exposed"]) >= {"invalid-reset", "table-full", "hash-chains"}
    assert checks(doc, "node-2")["headroom"]["verdict"] == "ok"  # node-2 has its own count
