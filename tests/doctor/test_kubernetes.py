"""The doctor on Kubernetes, against the API server TEST DOUBLE (tests/kubernetes/double.py):
the checks run through kubectl-debug pods, in an existing namespace as `kubectl debug node` puts
them, deleted at the end; no other object is made."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import jsonschema

from connreset.doctor import doctor, schema
from connreset.testbed import RUN_LABEL, TestbedSpec
from tests.doctor.facts import DROP, LAB_RULES
from tests.kubernetes.double import ApiServerDouble

ROOT = Path(__file__).parent.parent.parent
HEADER = "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop"


def _stat(entries: int, drop: int) -> str:
    row = f"{entries:08x}  " + " ".join(f"{v:08x}" for v in (0, 0, 0, 0, 0, 0, 0, 0, 0, drop, 0))
    return f"{HEADER}\n{row}\n"


class Nodes:
    """What each node's commands print: kind-worker saturated (its table at max, drops rising),
    kind-control-plane with buckets = max / 8 and kube-proxy's drop rule."""

    def __init__(self) -> None:
        self.reads: collections.Counter[str] = collections.Counter()
        self.seen: list[tuple[str, list[str]]] = []

    def __call__(self, pod: str, command: list[str]) -> tuple[int, str, str]:
        self.seen.append((pod, command))
        saturated = pod.startswith("node-debugger-kind-worker-")  # node-debugger-NODE-RUN
        argv = command[2:]  # after chroot /host
        files = {
            "/proc/sys/kernel/osrelease": "6.1.0-30-amd64",
            "/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal": "0",
            "/proc/sys/net/netfilter/nf_conntrack_max": "131072",
            "/proc/sys/net/netfilter/nf_conntrack_buckets": "32768" if saturated else "16384",
            "/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_close_wait": "3600",
            "/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established": "86400",
        }
        if argv[:2] == ["cat", "--"]:
            path = argv[2]
            if path == "/proc/net/stat/nf_conntrack":
                self.reads[pod] += 1
                n = self.reads[pod]
                return 0, _stat(131072, 1000 * n) if saturated else _stat(40000, 0), ""
            return (0, files[path] + "\n", "") if path in files else (1, "", f"cat: {path}: No such file\n")
        if argv == ["iptables-save"]:
            return 0, LAB_RULES if saturated else LAB_RULES.replace("-j ACCEPT\n", "-j ACCEPT\n" + DROP), ""
        if argv == ["nproc"]:
            return 0, "4\n", ""
        if argv == ["conntrack", "--version"]:
            return 0, "conntrack v1.4.7 (conntrack-tools)\n", ""
        if argv[:2] == ["sh", "-c"]:
            return 0, ("3000\n" if saturated else "10\n"), ""
        if argv[0] == "dmesg":
            line = "[ 10.0] nf_conntrack: nf_conntrack: table full, dropping packet\n"
            return 0, line * (self.reads[pod] if saturated else 0), ""
        if argv[0] == "readlink":
            return 0, "net:[4026531840]\n", ""
        return 1, "", f"{argv[0]}: not found\n"


async def test_doctor_reads_through_debug_pods_and_leaves_nothing(
    options: dict[str, str], api_double: ApiServerDouble
) -> None:
    nodes = Nodes()
    api_double.exec_handler = nodes
    api_double.namespaces["default"] = {"metadata": {"name": "default"}}  # as every cluster has it
    spec = TestbedSpec("kubernetes", None, options)
    report = await doctor(spec, window=1.0)

    # every check ran through a debug pod on its node, named as kubectl does, with the run's end
    run = report.run_id[-6:]
    pods = {f"node-debugger-kind-worker-{run}", f"node-debugger-kind-control-plane-{run}"}
    assert {pod for pod, _ in nodes.seen} == pods
    assert all(cmd[:2] == ["chroot", "/host"] for _, cmd in nodes.seen)
    # only the debug pods are made (in the existing namespace, as `kubectl debug node` does),
    # labelled with the run, and deleted at the end: no namespace, nothing else
    made = api_double.calls("POST")
    assert sorted(r.path for r in made) == ["/api/v1/namespaces/default/pods"] * 2
    assert all(r.body["metadata"]["labels"][RUN_LABEL] == report.run_id for r in made)
    assert not api_double.calls("PUT") and not api_double.calls("PATCH")
    deleted = sorted(r.path for r in api_double.calls("DELETE"))
    assert deleted == sorted(f"/api/v1/namespaces/default/pods/{pod}" for pod in pods)
    assert not api_double.pods and list(api_double.namespaces) == ["default"]
    assert report.created and "debug pod" in report.created[0]
    # no exec wrote anything: every command is one the doctor lists as read-only
    for _, cmd in nodes.seen:
        assert cmd[2] in {
            "cat",
            "iptables-save",
            "nft",
            "ip",
            "nproc",
            "conntrack",
            "sh",
            "dmesg",
            "readlink",
        }
        assert cmd[2:4] != ["tee", "--"]

    # kube-proxy's ConfigMap was read
    assert report.kube_proxy == {
        "mode": "iptables",
        "conntrack": {"maxPerCore": 32768, "min": 131072, "tcpBeLiberal": False},
    }
    worker = next(n for n in report.nodes if n.node == "kind-worker")
    plane = next(n for n in report.nodes if n.node == "kind-control-plane")

    # a saturated node: its drop rate and the recommended max
    counters = worker.check("counters")
    assert counters.verdict == "exposed" and counters.data["drop_per_second"] > 0
    new = worker.check("new-flows")
    assert new.verdict == "at risk" and new.data["recommended_max"] > 131072
    assert f"conntrack.min: {new.data['recommended_max']}" in new.fix
    assert worker.check("headroom").verdict == "exposed"
    assert worker.check("table-full").verdict == "exposed"
    assert worker.check("be_liberal").verdict == "exposed"  # no drop rule, be_liberal 0

    # buckets = max / 8: at risk, citing the hash-ratio sweep
    ratio = plane.check("hash-ratio")
    assert ratio.verdict == "at risk" and ratio.data["ratio"] == 8.0 and "sweep_hash_ratio.py" in ratio.why
    assert plane.check("kube-proxy").verdict == "ok"  # the drop rule protects it
    assert plane.exposed_to() == {"hash-chains": "at risk"}

    assert report.exit_code == 1
    jsonschema.validate(report.to_json(), schema())


def test_the_cli_says_what_it_makes_and_exits_1(
    options: dict[str, str], api_double: ApiServerDouble, tmp_path: Path
) -> None:
    api_double.exec_handler = Nodes()
    api_double.namespaces["default"] = {"metadata": {"name": "default"}}
    argv = [sys.executable, "-m", "connreset", "doctor", "--cluster", "kubernetes", "--window", "1", "--json",
            "--journal", str(tmp_path / "j.json"), *(a for k, v in options.items() for a in ("--cluster-opt", f"{k}={v}"))]  # fmt: skip # noqa: E501
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, schema())
    assert doc["exposed"] == {"invalid-reset": ["kind-worker"], "table-full": ["kind-worker"],
                              "hash-chains": ["kind-control-plane"]}  # fmt: skip
    dry = subprocess.run(
        [sys.executable, "-m", "connreset", "doctor", "--cluster", "kubernetes", "--dry-run",
         *(a for k, v in options.items() for a in ("--cluster-opt", f"{k}={v}"))],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert "read-only" in dry.stdout and "debug pod" in dry.stdout
    assert "works in the existing namespace default" in dry.stdout, dry.stdout
