"""KubectlDebugAccess against the API server test double (tests/kubernetes/double.py)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from connreset.errors import BackendError
from connreset.kubernetes.cluster import KubernetesCluster
from connreset.kubernetes.debug_access import KubectlDebugAccess
from connreset.testbed import Testbed
from connreset.testbed.access import NodeAccess
from connreset.testbed.cluster import RUN_LABEL
from tests.kubernetes.double import ApiServerDouble, node


async def opened(options: dict[str, str]) -> tuple[KubernetesCluster, KubectlDebugAccess]:
    cluster = KubernetesCluster(**options)
    await cluster.open()
    await cluster.begin_run("r1")
    access = KubectlDebugAccess(image="busybox:1.36")
    await access.open(cluster, await cluster.inventory())
    await access.begin_run("r1")
    return cluster, access


def test_is_a_node_access() -> None:
    access = KubectlDebugAccess()
    assert isinstance(access, NodeAccess)
    assert (access.name, access.shares_kernel) == ("kubectl-debug", False)


async def test_exec_runs_on_the_node_through_one_debug_pod(
    options: dict[str, str], api_double: ApiServerDouble
) -> None:
    seen: list[tuple[str, list[str]]] = []

    def handler(pod: str, command: list[str]) -> tuple[int, str, str]:
        seen.append((pod, command))
        if command[-1] == "/proc/sys/net/netfilter/nf_conntrack_max":
            return 0, "262144\n", ""
        return 1, "", "iptables: Bad rule\n"

    api_double.exec_handler = handler
    cluster, access = await opened(options)
    try:
        value = await access.kernel("kind-worker").read_sysctl("net.netfilter.nf_conntrack_max")
        assert value == "262144"
        failed = await access.exec("kind-worker", ["iptables", "-C", "FORWARD", "-j", "DROP"])
        assert (failed.returncode, failed.stderr, failed.argv[0]) == (1, "iptables: Bad rule\n", "iptables")

        [create] = api_double.calls("POST", "/api/v1/namespaces/connreset-r1/pods")  # made once, reused
        pod = create.body
        spec = pod["spec"]
        assert pod["metadata"]["labels"][RUN_LABEL] == "r1"
        assert (spec["nodeName"], spec["hostNetwork"], spec["hostPID"], spec["hostIPC"]) == (
            "kind-worker",
            True,
            True,
            True,
        )
        [container] = spec["containers"]
        assert container["securityContext"] == {"privileged": True}
        assert container["volumeMounts"] == [{"name": "host-root", "mountPath": "/host"}]
        assert spec["volumes"] == [{"name": "host-root", "hostPath": {"path": "/"}}]

        assert seen == [
            (
                "node-debugger-kind-worker",
                ["chroot", "/host", "cat", "--", "/proc/sys/net/netfilter/nf_conntrack_max"],
            ),
            ("node-debugger-kind-worker", ["chroot", "/host", "iptables", "-C", "FORWARD", "-j", "DROP"]),
        ]
        execs = api_double.calls("GET", "/pods/node-debugger-kind-worker/exec")
        assert [r.query["container"] for r in execs] == [["debugger"]] * 2
    finally:
        await access.close()
        await cluster.close()


async def test_write_file_carries_stdin_in_the_argv(
    options: dict[str, str], api_double: ApiServerDouble
) -> None:
    seen: list[list[str]] = []

    def handler(pod: str, command: list[str]) -> tuple[int, str, str]:
        seen.append(command)
        return 0, "", ""

    api_double.exec_handler = handler
    cluster, access = await opened(options)
    try:
        await access.kernel("kind-worker").write_sysctl("net.netfilter.nf_conntrack_tcp_be_liberal", "1")
        [command] = seen
        assert command[:2] == ["sh", "-c"]
        assert "chroot /host" in command[2]
        assert base64.b64decode(command[4]) == b"1"
        assert command[5:] == ["tee", "--", "/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal"]
    finally:
        await cluster.close()


async def test_end_run_deletes_the_debug_pods(options: dict[str, str], api_double: ApiServerDouble) -> None:
    cluster, access = await opened(options)
    try:
        await access.exec("kind-worker", ["true"])
        await access.exec("kind-control-plane", ["true"])
        lines = await access.end_run("r1")  # what `connreset restore` calls
        assert sorted(lines) == [
            "deleted debug pod connreset-r1/node-debugger-kind-control-plane on kind-control-plane",
            "deleted debug pod connreset-r1/node-debugger-kind-worker on kind-worker",
        ]
        deletes = api_double.calls("DELETE", "/api/v1/namespaces/connreset-r1/pods/")
        assert len(deletes) == 2
        assert not [k for k in api_double.pods if k[1].startswith("node-debugger")]
    finally:
        await cluster.close()


async def test_kind_nodes_refuse_machine_wide_sysctls(
    options: dict[str, str], api_double: ApiServerDouble
) -> None:
    api_double.nodes = [node("kind-worker", "172.18.0.3", provider="kind://docker/kind/kind-worker")]
    cluster, access = await opened(options)
    try:
        assert "host-sysctl" not in access.capabilities
        with pytest.raises(BackendError, match="kind node"):
            await access.kernel("kind-worker").write_sysctl("net.netfilter.nf_conntrack_max", "1000")
        assert api_double.calls("GET", "/exec") == []
    finally:
        await cluster.close()


@pytest.mark.parametrize(
    ("context", "container_nodes"), [("kind-x", True), ("k3d-dev", True), ("minikube", False)]
)
def test_container_clusters_withhold_host_sysctl_before_opening(
    context: str, container_nodes: bool, options: dict[str, str]
) -> None:
    """Known from the context's name, so validation refuses blog_repro's table-size steps with
    the reason, before anything opens; machines keep host sysctls through the debug pods."""
    tb = Testbed(KubernetesCluster(**{**options, "context": context}), KubectlDebugAccess())
    assert ("host-sysctl" in tb.capabilities) is not container_nodes
    assert tb.access.shares_kernel is container_nodes
    if container_nodes:
        assert "its nodes are containers sharing this machine's kernel" in tb.withheld["host-sysctl"]
    else:
        assert tb.withheld == {}
        assert tb.sysctl_scope("net.netfilter.nf_conntrack_max") == "node"  # set on each machine


async def test_machine_nodes_keep_host_sysctl_once_open(
    options: dict[str, str], api_double: ApiServerDouble
) -> None:
    api_double.nodes = [node("worker-1", "10.0.0.5", provider="aws:///eu-west-1a/i-0abc")]
    kubeconfig = Path(options["kubeconfig"])
    kubeconfig.write_text(kubeconfig.read_text().replace("name: kind-test", "name: minikube"))
    tb = Testbed(KubernetesCluster(**{**options, "context": "minikube"}), KubectlDebugAccess())
    async with tb:
        assert "host-sysctl" in tb.capabilities
