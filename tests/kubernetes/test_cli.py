"""The command line on the kubernetes testbed: the shipped experiments' dry runs, the guard, and
restore after ``kill -9``, against the API server test double (tests/kubernetes/double.py)."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from connreset._support.redact import REDACTED
from connreset.runs.journal import read
from connreset.runs.restore import spec_of
from connreset.testbed import TestbedSpec
from connreset.ui.cli import main
from tests.kubernetes.double import ApiServerDouble

ROOT = Path(__file__).parents[2]
EXPERIMENTS = ROOT / "experiments"
TOKEN = "not-a-real-token"
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: double
  cluster: {{server: "{url}", certificate-authority-data: Q0EtREFUQQ==}}
users:
- name: tester
  user: {{token: {token}, client-key-data: S0VZLURBVEE=}}
contexts:
- {{name: kind-x, context: {{cluster: double, user: tester}}}}
- {{name: staging-eu, context: {{cluster: double, user: tester}}}}
- {{name: prod-eu, context: {{cluster: double, user: tester}}}}
current-context: prod-eu
"""


@pytest.fixture
def cluster_args(tmp_path: Path, api_double: ApiServerDouble) -> list[str]:
    """``--cluster kubernetes ...`` with a kubeconfig holding credentials, pointing at the double,
    and an allow file listing ``staging-eu``; no context yet."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG.format(url=api_double.url, token=TOKEN))
    allow = tmp_path / "contexts.toml"
    allow.write_text('allow = ["staging-eu"]\n')
    return [
        "--cluster",
        "kubernetes",
        "--node-access",
        "kubectl-debug",
        "--cluster-opt",
        f"kubeconfig={kubeconfig}",
        "--cluster-opt",
        f"allow_file={allow}",
    ]


def no_credentials(text: str) -> None:
    for secret in (TOKEN, "S0VZLURBVEE=", "Q0EtREFUQQ==", "KEY-DATA"):
        assert secret not in text


def test_issue_74839_dry_run_on_kind(
    cluster_args: list[str], api_double: ApiServerDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unchanged, it validates and plans: every object as YAML, every node change, the values not
    read, what runs differently from the lab; no request, no credential."""
    code = main(
        [str(EXPERIMENTS / "issue_74839.py"), *cluster_args, "--cluster-opt", "context=kind-x", "--dry-run"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.count("kind: Namespace") == 1
    assert out.count("kind: Deployment") == 6  # boom-server and boom-client, in three phases
    assert out.count("kind: Service") == 3
    assert out.count("kind: Pod") == 1  # the debug pod, as made on each node's first use
    assert "context 'kind-x' is a local cluster" in out
    assert "(every node)  net.netfilter.nf_conntrack_tcp_be_liberal  ? → 1" in out
    assert "(every node)  iptables -t filter -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP" in out
    assert "(? a current value not read: a dry run opens nothing" in out
    assert out.count("offset=1000000 is lab-only, the image's fixed shape is used") == 3
    assert "logs 'ERROR: RST received' on a RST and keeps running" in out
    assert "&id" not in out and "*id" not in out  # plain YAML, no aliases
    no_credentials(out + err)
    assert api_double.requests == []


def test_blog_repro_dry_run_on_a_cluster_of_machines(
    cluster_args: list[str], api_double: ApiServerDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a listed context whose nodes are machines, machine-wide sysctls go through the debug
    pods: blog_repro validates and plans each of them."""
    code = main(
        [
            str(EXPERIMENTS / "blog_repro.py"),
            *cluster_args,
            "--cluster-opt",
            "context=staging-eu",
            "--dry-run",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "context 'staging-eu' is listed in" in out
    for change in (
        "net.netfilter.nf_conntrack_buckets  ? → 300",
        "net.netfilter.nf_conntrack_max  ? → 1200",
        "net.netfilter.nf_conntrack_buckets  ? → 150",
        "net.netfilter.nf_conntrack_max  ? → 600",
        "net.netfilter.nf_conntrack_tcp_be_liberal  ? → 1",
        "net.netfilter.nf_conntrack_max  ? → 131072",
    ):
        assert f"(every node)  {change}\n" in out, change
    # scale-up's 4, then nginx and the canary afresh in each of the 3 fix phases
    assert out.count("kind: Deployment") == 10
    assert out.count("livenessProbe:") == 4  # nginx's, each time it is deployed
    no_credentials(out + err)
    assert api_double.requests == []


def test_blog_repro_on_kind_is_refused_with_the_reason(
    cluster_args: list[str], api_double: ApiServerDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [str(EXPERIMENTS / "blog_repro.py"), *cluster_args, "--cluster-opt", "context=kind-x", "--dry-run"]
    )
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    [line] = err.splitlines()
    assert (
        "step 'nf_conntrack_buckets=300': backend 'kubernetes' cannot do set-sysctl (needs host-sysctl)"
        in line
    )
    assert (
        "context 'kind-x' names a kind cluster: its nodes are containers sharing this machine's kernel"
        in line
    )
    assert api_double.requests == []


def connreset_process(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "connreset", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KUBECONFIG": "/nonexistent"},
    )


def test_the_guard_refuses_prod_eu_before_any_request(
    cluster_args: list[str], api_double: ApiServerDouble, tmp_path: Path
) -> None:
    proc = connreset_process(
        str(EXPERIMENTS / "issue_74839.py"), *cluster_args, "--cluster-opt", "context=prod-eu", cwd=tmp_path
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith("connreset: context 'prod-eu' looks like production; refused unless ")
    assert api_double.requests == []


KILLED = """\
import asyncio
import sys

from connreset import Call, Deploy, Experiment, SetSysctl, workloads


async def ready(ctx):
    print("ready", file=sys.stderr, flush=True)
    await asyncio.Event().wait()


experiment = Experiment.single(
    "killed",
    [
        Deploy("web", workloads.command(["sleep", "3600"])),
        SetSysctl("nf_conntrack_tcp_be_liberal", 1),
        Call(ready),
    ],
)
"""


class Nodes:
    """TEST DOUBLE of the nodes behind the debug pods' exec: files by (pod, path)."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, str], str] = {}
        self.lock = threading.Lock()

    def __call__(self, pod: str, command: list[str]) -> tuple[int, str, str]:
        with self.lock:
            if command[:2] == ["sh", "-c"] and command[5:7] == ["tee", "--"]:
                self.files[(pod, command[7])] = base64.b64decode(command[4]).decode()
                return 0, "", ""
            if command[:4] == ["chroot", "/host", "cat", "--"]:
                return 0, self.files.get((pod, command[4]), "0\n"), ""
            return 0, "6.8.0-test\n", ""


def test_restore_after_kill_9(cluster_args: list[str], api_double: ApiServerDouble, tmp_path: Path) -> None:
    """A run killed mid-way left its namespace, a Deployment, a node sysctl and debug pods;
    ``connreset restore JOURNAL`` (nothing else given) puts the sysctl back and deletes them."""
    nodes = api_double.exec_handler = Nodes()
    (tmp_path / "killed.py").write_text(KILLED)
    journal = tmp_path / "journal.json"
    proc = connreset_process(
        "killed.py", *cluster_args, "--cluster-opt", "context=kind-x", "--journal", str(journal), cwd=tmp_path
    )
    guard = threading.Timer(60, proc.kill)  # only if it never gets ready: the test then fails
    guard.start()
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if line.strip() == "ready":
                break
        else:
            pytest.fail("the run ended before it was ready:\n" + "".join(seen))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        guard.cancel()
    assert proc.returncode == -signal.SIGKILL

    liberal = "/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal"
    debug_pods = ["node-debugger-kind-control-plane", "node-debugger-kind-worker"]
    assert {nodes.files[(pod, liberal)] for pod in debug_pods} == {"1"}
    [namespace] = api_double.namespaces
    assert namespace.startswith("connreset-")
    spec = read(journal)["spec"]
    assert spec["cluster_options"]["context"] == "kind-x"  # the journal can reopen the testbed
    assert spec["cluster_options"]["kubeconfig"] == str(tmp_path / "kubeconfig")
    assert spec["cluster_options"]["allow_file"] == str(tmp_path / "contexts.toml")
    before = len(api_double.requests)

    restore = connreset_process("restore", str(journal), cwd=tmp_path)
    out, err = restore.communicate(timeout=120)
    assert restore.returncode == 0, out + err
    asked = [(r.method, r.path) for r in api_double.requests[before:]]
    assert ("DELETE", f"/api/v1/namespaces/{namespace}") in asked
    for pod in debug_pods:
        assert ("DELETE", f"/api/v1/namespaces/{namespace}/pods/{pod}") in asked
    assert ("DELETE", f"/apis/apps/v1/namespaces/{namespace}/deployments/web") in asked
    assert {nodes.files[(pod, liberal)] for pod in debug_pods} == {"0"}
    assert api_double.namespaces == {}
    assert f"deleted namespace {namespace} (and everything in it)" in out
    no_credentials(journal.read_text() + out + err)


def test_the_journal_keeps_kubernetes_options_and_redacts_a_token() -> None:
    options = {"context": "kind-x", "kubeconfig": "/k", "allow_file": "/a", "token": "t0ken", "images": "x"}
    kept = TestbedSpec("kubernetes", "kubectl-debug", options).to_json()
    assert kept["cluster_options"] == {**options, "token": REDACTED}
    journal = {"spec": json.loads(json.dumps(kept))}
    with pytest.raises(Exception, match="give token again"):
        spec_of(journal)
    assert spec_of(journal, cluster_options={"token": "t0ken"}).cluster_options["token"] == "t0ken"
