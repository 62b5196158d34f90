"""The embedded lab as a backend: ``--backend lab`` (the default)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Literal

from connreset import sysctl
from connreset.errors import BackendError, ValidationError
from connreset.lab import addressing as addr
from connreset.lab import host, plumbing, proxy
from connreset.lab.cluster import LabCluster
from connreset.lab.kmsg import KernelLog
from connreset.lab.node import LabNode
from connreset.logs import get_logger

log = get_logger("connreset.lab")


class LabBackend:
    """A mini-cluster of network namespaces on this machine, built on open and removed on close.

    Args:
        nodes: how many nodes (network namespaces), 1 to 60.
        time_scale: multiplies kubelet's restart back-off (10 s doubling to 300 s); 0.1 → 1 s.
    """

    name = "lab"
    capabilities = frozenset({"cluster", "logs", "sysctl", "iptables", "conntrack", "exec"})

    def __init__(self, nodes: int | str = 2, time_scale: float | str = 1.0) -> None:
        try:
            self.node_count = int(nodes)
            self.time_scale = float(time_scale)
        except ValueError as exc:
            raise ValidationError(f"lab options: {exc}") from None
        if not 1 <= self.node_count <= addr.MAX_NODES:
            raise ValidationError(f"lab nodes must be 1..{addr.MAX_NODES}, got {self.node_count}")
        if self.time_scale <= 0:
            raise ValidationError(f"lab time_scale must be > 0, got {self.time_scale}")
        self.kernel_log = KernelLog()
        self._nodes = [
            LabNode(addr.node_name(i), addr.node_ns(i), self.kernel_log) for i in range(self.node_count)
        ]
        self._cluster: LabCluster | None = None
        self._log_sink: Callable[[str, str], None] | None = None
        self._lock = host.HostLock()

    @property
    def cluster(self) -> LabCluster:
        if self._cluster is None:
            raise RuntimeError("the lab is not up")
        return self._cluster

    def nodes(self) -> Sequence[LabNode]:
        return self._nodes

    def node_names(self) -> Sequence[str]:
        return [n.name for n in self._nodes]

    def stream_pod_logs(self, sink: Callable[[str, str], None] | None) -> None:
        """Hand every new pod log line to ``sink(pod, line)`` (the engine's PodLog events)."""
        self._log_sink = sink
        if self._cluster is not None:
            self._cluster.log_sink = sink
            for pod in self._cluster.all_pods():
                pod.log_sink = sink

    def sysctl_scope(self, key: str) -> Literal["node", "host"]:
        return "host" if sysctl.is_host_global(key) else "node"

    async def preview_sysctl(self, node: str, key: str) -> str | None:
        if sysctl.is_host_global(key):
            return host.read_global(key)
        return None  # the node's namespace does not exist before the run

    async def __aenter__(self) -> LabBackend:
        host.require_root()
        self._lock.acquire()
        try:
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
            await self._build()
        except BaseException:
            await self._teardown()
            raise
        return self

    async def _build(self) -> None:
        t0 = time.monotonic()
        self.kernel_log.start()
        await plumbing.build_nodes(self.node_count, proxy.base_rules())
        await asyncio.gather(*(n.start() for n in self._nodes))
        self._cluster = LabCluster(self.node_names(), self.time_scale)
        self._cluster.log_sink = self._log_sink
        log.info("lab up", nodes=self.node_count, seconds=round(time.monotonic() - t0, 3))

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        from connreset.engine.runner import shielded

        await shielded(self._teardown())

    async def _teardown(self) -> None:
        """Every stage runs whatever happened in the one before; the lock goes last."""
        failures: list[str] = []
        stages: list[Callable[[], Awaitable[object]]] = [
            *([self._cluster.shutdown] if self._cluster is not None else []),
            lambda: asyncio.gather(*(n.stop() for n in self._nodes)),
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
