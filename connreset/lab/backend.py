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
from typing import Literal

import attrs

from connreset._support import numbers
from connreset._support.aio import shielded
from connreset._support.logs import get_logger
from connreset.errors import BackendError
from connreset.kernel.node import ExecResult
from connreset.lab import addressing as addr
from connreset.lab import host, plumbing, proxier
from connreset.lab.cluster import LabCluster
from connreset.lab.kmsg import KernelLog
from connreset.lab.node import LabNode
from connreset.lab.workloads import refusal
from connreset.testbed import (
    BaseClusterBackend,
    Capacity,
    DeploymentSpec,
    LogSink,
    NodeInfo,
    PodStatus,
    option,
)
from connreset.testbed.workloads import Workload

log = get_logger("connreset.lab")


def valid_nodes(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    """attrs validator: a node count the lab can build (1 to MAX_NODES)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= addr.MAX_NODES:
        raise ValueError(f"lab nodes must be 1..{addr.MAX_NODES}, got {value!r}")


def _time_scale(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not numbers.is_number(value) or not 0 < value < float("inf"):
        raise ValueError(f"lab time_scale must be a finite number > 0, got {value!r}")


#: the kube-proxy modes the lab models (:data:`connreset.lab.proxier.MODES`)
ProxyMode = Literal["iptables", "iptables-1.29", "iptables-liberal", "nftables", "nftables-liberal", "ipvs"]


@attrs.frozen
class LabOptions:
    """The lab's options (``--cluster-opt K=V``)."""

    nodes: int = option(
        2, f"how many nodes (network namespaces), 1 to {addr.MAX_NODES}", validator=valid_nodes
    )
    time_scale: float = option(
        1.0,
        "multiplies kubelet's restart back-off (10 s doubling to 300 s); 0.1 makes it 1 s",
        validator=_time_scale,
    )
    proxy: ProxyMode = option(
        proxier.DEFAULT,
        "which kube-proxy the nodes run: iptables (before v1.15, the default), iptables-1.29, "
        "iptables-liberal, nftables, nftables-liberal, ipvs (where the kernel has IPVS)",
        validator=attrs.validators.in_(tuple(proxier.MODES)),
    )


class LabBackend(BaseClusterBackend):
    """A mini-cluster of network namespaces on this machine, built on open and removed on close.

    Options: :class:`LabOptions`.
    """

    name = "lab"
    capabilities = frozenset({"cluster", "logs"})
    default_node_access = "lab"
    Options = LabOptions
    options: LabOptions

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        self.node_count: int = self.options.nodes
        self.time_scale: float = self.options.time_scale
        self.proxy = proxier.mode(self.options.proxy)  # refuses a mode this kernel cannot run
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

    # begin_run/end_run: the base's no-ops (the lab's Deployments are undone one by one; the lab
    # itself goes on close)

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

    def refuses(self, workload: Workload) -> str | None:
        return refusal(workload)

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
