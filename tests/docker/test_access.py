"""The docker node access on real containers: podman's Docker-compatible service, the real docker
CLI, kind-like node containers joined to ``crdock-*`` namespaces. Nothing here writes a sysctl of
the machine's own namespace: the host-sysctl helper is only read through."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from connreset import (
    ApplyFix,
    BackendError,
    Experiment,
    NodeUnavailable,
    Observe,
    Phase,
    TimedOut,
    ToolMissing,
    Unreachable,
    run,
)
from connreset.docker import DockerNodeAccess
from connreset.docker.helper import ROLE, ROLE_LABEL
from connreset.kernel.node import Rule
from connreset.testbed import RUN_LABEL, NodeInfo, Testbed
from connreset.testing import MemoryCluster
from tests.docker.kind import IMAGE, KindNodes, PodmanEngine

pytestmark = [pytest.mark.root, pytest.mark.docker]

LIBERAL = "/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal"
RULE = Rule("filter", "INPUT", ("-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP"))


def in_ns(ns: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, check=False)


def nodes_of(cluster: KindNodes) -> list[NodeInfo]:
    return [NodeInfo(name) for name in cluster.nodes]


async def opened(cluster: KindNodes, **options: str) -> DockerNodeAccess:
    access = DockerNodeAccess(cluster=cluster.cluster, **options)
    await access.open(MemoryCluster(0), nodes_of(cluster))
    return access


async def test_nodes_are_the_containers_labelled_with_the_cluster(
    kind_cluster: KindNodes, docker_host: PodmanEngine, namespaces: list[str]
) -> None:
    name = kind_cluster.cluster
    with KindNodes(docker_host, f"{name}-other", {f"{name}-other-worker": namespaces[0]}, IMAGE):
        access = DockerNodeAccess(cluster=name)
        await access.open(MemoryCluster(0), [])  # no inventory: every container of the cluster
        try:
            assert sorted(access.nodes) == [f"{name}-control-plane", f"{name}-worker"]
            assert access.nodes[f"{name}-control-plane"].role == "control-plane"
            assert access.nodes[f"{name}-worker"].role == "worker"
            assert access.nodes[f"{name}-worker"].running
        finally:
            await access.close()
        access = DockerNodeAccess(cluster=name)
        await access.open(MemoryCluster(0), [NodeInfo(f"{name}-worker")])  # only the inventory's
        assert list(access.nodes) == [f"{name}-worker"]
        await access.close()


async def test_kernel_verbs_through_docker_exec(kind_cluster: KindNodes, namespaces: list[str]) -> None:
    access = await opened(kind_cluster)
    control, worker = list(kind_cluster.nodes)
    try:
        kernel = access.kernel(worker)
        # a per-namespace sysctl: written in the worker's namespace only
        assert await kernel.read_sysctl("nf_conntrack_tcp_be_liberal") == "0"
        await kernel.write_sysctl("nf_conntrack_tcp_be_liberal", "1")
        assert in_ns(namespaces[1], "cat", LIBERAL).stdout.strip() == "1"
        assert in_ns(namespaces[0], "cat", LIBERAL).stdout.strip() == "0"
        assert await access.kernel(control).read_sysctl("nf_conntrack_tcp_be_liberal") == "0"
        await kernel.write_sysctl("nf_conntrack_tcp_be_liberal", "0")
        assert in_ns(namespaces[1], "cat", LIBERAL).stdout.strip() == "0"
        # iptables: add, check (-C), remove, seen from the namespace itself
        assert not await kernel.has_rule(RULE)
        await kernel.add_rule(RULE)
        assert await kernel.has_rule(RULE)
        assert in_ns(namespaces[1], "iptables", "-C", "INPUT", *RULE.args).returncode == 0
        assert in_ns(namespaces[0], "iptables", "-C", "INPUT", *RULE.args).returncode != 0
        await kernel.remove_rule(RULE)
        assert in_ns(namespaces[1], "iptables", "-C", "INPUT", *RULE.args).returncode != 0
        # conntrack: counters (conntrack -S's names) and the count, from the sampler shell
        stats = await kernel.conntrack_stats()
        assert {"entries", "found", "invalid", "insert_failed", "drop", "early_drop"} <= set(stats)
        assert await kernel.conntrack_count() == stats["entries"] == 0
        await kernel.flush_conntrack()
        # the namespace as the kernel names it in its log lines; the kernel's lines; its release
        link = in_ns(namespaces[1], "readlink", "/proc/self/ns/net").stdout
        assert f"net:[{await kernel.netns_inode()}]" == link.strip()
        assert isinstance(await kernel.table_full_lines(), list)
        assert await kernel.kernel() == os.uname().release
    finally:
        await access.close()
        in_ns(namespaces[1], "iptables", "-D", "INPUT", *RULE.args)


async def test_exec_codes_stdin_and_timeouts(kind_cluster: KindNodes) -> None:
    access = await opened(kind_cluster)
    node = next(iter(kind_cluster.nodes))
    try:
        assert (await access.exec(node, ["sh", "-c", "exit 7"])).returncode == 7
        echoed = await access.exec(node, ["cat"], stdin=b"one line\nand another\n")
        assert echoed.ok and echoed.stdout == "one line\nand another\n"
        spaced = await access.exec(node, ["sh", "-c", 'printf "%s|" "$@"', "sh", "a b", "$HOME", "'"])
        assert spaced.stdout == "a b|$HOME|'|"  # argv words arrive as they were, never re-split
        assert (await access.exec(node, ["no-such-program"])).returncode == 127
        start = time.monotonic()
        with pytest.raises(
            TimedOut, match=r"`sleep 30` did not finish within 0.5 s through docker exec"
        ) as err:
            await access.exec(node, ["sleep", "30"], timeout=0.5)
        assert err.value.node == node
        assert time.monotonic() - start < 5
    finally:
        await access.close()


async def test_an_experiment_changes_and_puts_back(kind_cluster: KindNodes, namespaces: list[str]) -> None:
    """ApplyFix and Observe through docker exec, undone and verified; the cluster is a double."""
    for ns in namespaces:
        assert in_ns(ns, "iptables", "-N", "KUBE-FORWARD").returncode == 0  # kube-proxy's chain
    names = list(kind_cluster.nodes)
    cluster = MemoryCluster(0)
    cluster._names = names  # the double's nodes are the containers' names
    testbed = Testbed(cluster, DockerNodeAccess(cluster=kind_cluster.cluster))
    steps = [ApplyFix("be-liberal"), ApplyFix("drop-invalid"), Observe(1.0, every=0.1)]
    try:
        result = await run(Experiment("docker", [Phase("fixes", steps)]), testbed)
        assert result.passed, result
        assert all(u.verified for u in result.undo), result.undo
        assert len(result.undo) == 4  # be_liberal and the rule, on each node
        for ns in namespaces:
            assert in_ns(ns, "cat", LIBERAL).stdout.strip() == "0"
            assert "INVALID" not in in_ns(ns, "iptables", "-S", "KUBE-FORWARD").stdout
    finally:
        for ns in namespaces:
            in_ns(ns, "iptables", "-F", "KUBE-FORWARD")
            in_ns(ns, "iptables", "-X", "KUBE-FORWARD")


async def test_sampling_rate(kind_cluster: KindNodes) -> None:
    """conntrack's count at well over 10 Hz per node, every node at once, from one shell each."""
    access = await opened(kind_cluster)
    samples = 200
    try:
        kernels = [access.kernel(n) for n in kind_cluster.nodes]
        calls = access.cli.calls
        start = time.monotonic()

        async def many(kernel: object) -> None:
            for _ in range(samples):
                await kernel.conntrack_count()  # type: ignore[attr-defined]

        await asyncio.gather(*(many(k) for k in kernels))
        elapsed = time.monotonic() - start
        rate = samples / elapsed
        print(
            f"docker sampling: {samples} samples on each of {len(kernels)} nodes in {elapsed:.2f} s "
            f"= {rate:.0f} Hz per node"
        )
        assert rate >= 10
        assert access.cli.calls - calls == len(kernels)  # one sampler shell per node, no more
        # a docker exec per sample, for comparison
        start = time.monotonic()
        for _ in range(10):
            await access.exec(kernels[0].name, ["cat", "/proc/net/stat/nf_conntrack"])
        print(f"docker exec per sample: {(time.monotonic() - start) / 10 * 1000:.0f} ms")
    finally:
        await access.close()


async def test_host_helper_made_from_the_node_image_read_through_and_removed(
    kind_cluster: KindNodes, docker_host: PodmanEngine
) -> None:
    access = await opened(kind_cluster, host_sysctls="allow")
    node = next(iter(kind_cluster.nodes))
    try:
        await access.begin_run("run-1")
        # read only: this machine's own network namespace, and a machine-wide value, seen through it
        link = await access.exec(node, ["readlink", "/proc/self/ns/net"], host=True)
        assert link.stdout.strip() == os.readlink(f"/proc/{os.getpid()}/ns/net")
        before = Path("/proc/sys/net/netfilter/nf_conntrack_max").read_text().strip()
        seen = (
            await access.exec(node, ["cat", "/proc/sys/net/netfilter/nf_conntrack_max"], host=True)
        ).stdout
        after = Path("/proc/sys/net/netfilter/nf_conntrack_max").read_text().strip()
        assert seen.strip() in (before, after)  # another lab may change it meanwhile
        helpers = docker_host.containers(f"{ROLE_LABEL}={ROLE}")
        assert len(helpers) == 1
        info = json.loads(docker_host.docker("inspect", helpers[0]))[0]
        node_info = json.loads(docker_host.docker("inspect", node))[0]
        assert info["Image"] == node_info["Image"]  # the node's own image, by id: nothing pulled
        assert info["HostConfig"]["NetworkMode"] == "host"
        assert info["HostConfig"]["Privileged"] is True
        assert info["Config"]["Labels"][RUN_LABEL] == "run-1"
        # reused, not made again
        await access.exec(node, ["true"], host=True)
        assert docker_host.containers(f"{ROLE_LABEL}={ROLE}") == helpers
        lines = await access.end_run("run-1")
        assert lines == [f"removed host-sysctl helper container {helpers[0]}"]
        assert docker_host.containers(f"{ROLE_LABEL}={ROLE}") == []
        # outside a run (connreset restore replaying undos): removed when the access closes
        await access.exec(node, ["true"], host=True)
        assert len(docker_host.containers(f"{ROLE_LABEL}={ROLE}")) == 1
    finally:
        await access.close()
    assert docker_host.containers(f"{ROLE_LABEL}={ROLE}") == []


async def test_end_run_removes_a_killed_runs_helper(
    kind_cluster: KindNodes, docker_host: PodmanEngine
) -> None:
    """A run that was killed left its helper; restore's end_run (a new access) removes it."""
    first = await opened(kind_cluster, host_sysctls="allow")
    await first.begin_run("run-killed")
    await first.exec(next(iter(kind_cluster.nodes)), ["true"], host=True)
    first._samplers.clear()  # the process "dies": nothing is closed
    assert len(docker_host.containers(f"{RUN_LABEL}=run-killed")) == 1
    second = await opened(kind_cluster, host_sysctls="allow")
    try:
        assert len(await second.end_run("run-killed")) == 1
        assert docker_host.containers(f"{RUN_LABEL}=run-killed") == []
    finally:
        await second.close()


async def test_host_commands_refused_without_allow(
    kind_cluster: KindNodes, docker_host: PodmanEngine
) -> None:
    access = await opened(kind_cluster)
    try:
        with pytest.raises(BackendError, match="host_sysctls=allow"):
            await access.exec(next(iter(kind_cluster.nodes)), ["true"], host=True)
        assert docker_host.containers(f"{ROLE_LABEL}={ROLE}") == []
    finally:
        await access.close()


async def test_a_node_without_container_is_named_with_the_label(kind_cluster: KindNodes) -> None:
    access = DockerNodeAccess(cluster=kind_cluster.cluster)
    with pytest.raises(NodeUnavailable) as info:
        await access.open(MemoryCluster(0), [*nodes_of(kind_cluster), NodeInfo("node-3")])
    assert info.value.node == "node-3"
    text = str(info.value)
    assert "no container for node(s) node-3" in text
    assert f"io.x-k8s.kind.cluster={kind_cluster.cluster}" in text
    assert f"{kind_cluster.cluster}-worker" in text  # what was found
    with pytest.raises(NodeUnavailable, match=r"labelled io\.x-k8s\.kind\.cluster=no-such-cluster"):
        await DockerNodeAccess(cluster="no-such-cluster").open(MemoryCluster(0), [])


async def test_a_container_gone_after_open(kind_cluster: KindNodes, docker_host: PodmanEngine) -> None:
    access = await opened(kind_cluster)
    worker = list(kind_cluster.nodes)[1]
    try:
        docker_host.docker("rm", "--force", worker)
        with pytest.raises(NodeUnavailable, match=f"{worker}: its container '{worker}' is gone"):
            await access.exec(worker, ["true"])
        with pytest.raises(NodeUnavailable, match=f"{worker}:"):
            await access.kernel(worker).conntrack_count()
    finally:
        await access.close()


async def test_a_stopped_container_is_refused_at_open(
    kind_cluster: KindNodes, docker_host: PodmanEngine
) -> None:
    worker = list(kind_cluster.nodes)[1]
    docker_host.docker("stop", "--time", "0", worker)
    with pytest.raises(NodeUnavailable, match=rf"not running: {worker} \((exited|stopped)\)"):
        await opened(kind_cluster)


async def test_an_unreachable_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = f"unix://{tmp_path}/nothing.sock"
    monkeypatch.setenv("DOCKER_HOST", url)
    with pytest.raises(Unreachable) as info:
        await DockerNodeAccess(cluster="kind").open(MemoryCluster(0), [])
    assert f"cannot reach the container engine at DOCKER_HOST={url}" in str(info.value)


async def test_a_missing_cli() -> None:
    with pytest.raises(ToolMissing, match="the docker CLI '/nonexistent/docker' was not found"):
        await DockerNodeAccess(cluster="kind", docker="/nonexistent/docker").open(MemoryCluster(0), [])
