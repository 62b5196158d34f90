"""The embedded lab as a cluster backend: ``--cluster lab`` (the default).

Opening it builds the nodes (network namespaces with kube-proxy's rules) under a host-wide lock;
closing it removes everything and puts the machine-wide sysctls back. Its own node access is
:class:`connreset.lab.access.LabNodeAccess` (``--node-access lab``, the default with it).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Sequence

from connreset import numbers
from connreset.aio import shielded
from connreset.errors import BackendError, ValidationError
from connreset.kernel.node import ExecResult
from connreset.lab import addressing as addr
from connreset.lab import host, plumbing, proxier
from connreset.lab.cluster import LabCluster
from connreset.lab.kmsg import KernelLog
from connreset.lab.node import LabNode
from connreset.logs import get_logger
from connreset.testbed import Capacity, DeploymentSpec, LogSink, NodeInfo, PodStatus

log = get_logger("connreset.lab")


class LabBackend:
    """A mini-cluster of network namespaces on this machine, built on open and removed on close.

    Args:
        nodes: how many nodes (network namespaces), 1 to 60.
        time_scale: multiplies kubelet's restart back-off (10 s doubling to 300 s); 0.1 → 1 s.
        proxy: which kube-proxy the nodes run (:mod:`connreset.lab.proxier`): ``iptables`` (the
            default, before v1.15), ``iptables-1.29``, ``iptables-liberal``, ``nftables``,
            ``nftables-liberal`` or ``ipvs`` (refused where the kernel has no IPVS).
    """

    name = "lab"
    capabilities = frozenset({"cluster", "logs"})
    default_node_access = "lab"

    def __init__(
        self, nodes: int | str = 2, time_scale: float | str = 1.0, proxy: str = proxier.DEFAULT
    ) -> None:
        try:
            self.node_count = int(nodes)
            self.time_scale = float(time_scale)
        except ValueError as exc:
            raise ValidationError(f"lab options: {exc}") from None
        if not 1 <= self.node_count <= addr.MAX_NODES:
            raise ValidationError(f"lab nodes must be 1..{addr.MAX_NODES}, got {self.node_count}")
        try:
            numbers.positive("lab time_scale", self.time_scale)
        except ValueError:
            raise ValidationError(f"lab time_scale must be a finite number > 0, got {time_scale}") from None
        self.proxy = proxier.mode(str(proxy))
        self.kernel_log = KernelLog()
        self.lab_nodes = {
            addr.node_name(i): LabNode(addr.node_name(i), addr.node_ns(i)) for i in range(self.node_count)
        }
        self._cluster: LabCluster | None = None
        self._log_sink: LogSink | None = None
        self._lock = host.HostLock()

    @property
    def workloads(self) -> LabCluster:
        if self._cluster is None:
            raise BackendError("the lab is not up")
        return self._cluster

    # -- lifetime -------------------------------------------------------------------------------
    def node_names(self) -> Sequence[str]:
        return list(self.lab_nodes)

    def capacity(self) -> Capacity:
        """Each node's /22 gives :data:`~connreset.lab.addressing.PODS_PER_NODE` pod addresses:
        that many pods per node, known before the lab is built."""
        per_node = addr.PODS_PER_NODE
        return Capacity(
            per_node * self.node_count,
            per_node,
            self.node_count,
            f"{self.node_count} node(s) × {per_node} pod addresses",
        )

    async def inventory(self) -> Sequence[NodeInfo]:
        return [NodeInfo(addr.node_name(i), addr.node_ip(i)) for i in range(self.node_count)]

    async def open(self) -> None:
        host.require_root()
        self._lock.acquire()
        try:
            adopt = host.left_by_lab_up(self.node_count)
            if not adopt:
                stale = host.teardown()
                if stale:
                    log.warning("cleaned up after an earlier lab", actions=stale)
            host.write_state(
                {
                    "owner_pid": os.getpid(),
                    "started_at": time.time(),
                    "nodes": self.node_count,
                    "sysctl_originals": {},
                }
            )
            await self._build(adopt)
        except BaseException:
            await self._teardown()
            raise

    async def _build(self, adopt: bool = False) -> None:
        """Build the nodes, or adopt those ``connreset lab up`` left (their namespaces stay the
        same, so what was joined to them, a container or an sshd's command, keeps working)."""
        t0 = time.monotonic()
        self.kernel_log.start()
        kube_proxy = proxier.Proxier(self.proxy, self.node_count)
        if adopt:
            nodes = [n.ns for n in self.lab_nodes.values()]
            await kube_proxy.setup(adopted=True)
            await asyncio.gather(*(plumbing.nsexec_ok(ns, ["conntrack", "-F"]) for ns in nodes))
            log.info("adopted the nodes `connreset lab up` left", nodes=self.node_count)
        else:
            await plumbing.build_nodes(self.node_count)
            await kube_proxy.setup()
        await asyncio.gather(*(n.start() for n in self.lab_nodes.values()))
        self._cluster = LabCluster(self.node_names(), self.time_scale, kube_proxy)
        self._cluster.stream_logs(self._log_sink)
        log.info(
            "lab up", nodes=self.node_count, proxy=self.proxy.name, seconds=round(time.monotonic() - t0, 3)
        )

    def fingerprint(self) -> dict[str, str]:
        """For the journal's environment: which kube-proxy the lab models."""
        return {"kube_proxy": self.proxy.describe()}

    def plan_run(self, run_id: str) -> list[str]:
        """For ``--dry-run``: the kube-proxy the nodes will run."""
        return [f"lab: kube-proxy {self.proxy.describe()}"]

    async def close(self) -> None:
        await shielded(self._teardown())

    async def _teardown(self) -> None:
        """Every stage runs whatever happened in the one before; the lock goes last."""
        failures: list[str] = []
        stages: list[Callable[[], Awaitable[object]]] = [
            *([self._cluster.shutdown] if self._cluster is not None else []),
            lambda: asyncio.gather(*(n.stop() for n in self.lab_nodes.values())),
        ]
        for stage in stages:
            try:
                await stage()
            except Exception as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
        try:
            self.kernel_log.stop()
            for line in host.teardown():
                log.info("lab down", action=line)
        finally:
            self._cluster = None
            self._lock.release()
        if failures:
            raise BackendError("the lab was removed, but stopping it reported: " + "; ".join(failures))

    async def begin_run(self, run_id: str) -> None:
        return None

    async def end_run(self, run_id: str) -> Sequence[str]:
        return []  # the lab's Deployments are undone one by one; the lab itself goes on close

    # -- workloads ------------------------------------------------------------------------------
    async def deploy(self, spec: DeploymentSpec) -> None:
        await self.workloads.deploy(spec)

    async def scale(self, deployment: str, replicas: int) -> None:
        await self.workloads.scale(deployment, replicas)

    async def get(self, deployment: str) -> DeploymentSpec | None:
        return await self.workloads.get(deployment)

    async def pods(self, deployment: str | None = None) -> list[PodStatus]:
        return await self.workloads.pods(deployment)

    async def delete(self, deployment: str) -> None:
        await self.workloads.delete(deployment)

    def stream_logs(self, sink: LogSink | None) -> None:
        self._log_sink = sink
        if self._cluster is not None:
            self._cluster.stream_logs(sink)

    def plan_deploy(self, spec: DeploymentSpec) -> list[str]:
        return []

    # -- the lab's extras, for tests and benchmarks -----------------------------------------------
    async def logs(self, pod: str) -> list[str]:
        return await self.workloads.logs(pod)

    async def exec_in_pod(self, pod: str, argv: Sequence[str]) -> ExecResult:
        """``kubectl exec``: argv in a pod's network namespace."""
        return await self.workloads.exec(pod, argv)

    def service_addresses(self) -> dict[str, str]:
        return self.workloads.service_addresses()

    async def settle(self) -> None:
        """Wait until kube-proxy's rules on every node reflect every change so far."""
        await self.workloads.settle()
