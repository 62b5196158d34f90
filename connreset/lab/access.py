"""The lab's own node access: ``--node-access lab``, entering the nodes' namespaces.

The kernel verbs come from :class:`connreset.kernel.NodeKernel`; the lab adds faster paths:
conntrack's counters are read from a process living in the node (no process per sample),
machine-wide sysctls straight from ``/proc/sys`` (they read the same everywhere), and the
kernel's table-full lines from ``/dev/kmsg``, attributed to nodes by namespace inode.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from connreset.errors import BackendError
from connreset.kernel import conntrack, sysctl
from connreset.kernel.node import ExecResult, NodeKernel
from connreset.lab import host as lab_host
from connreset.lab import plumbing, proxier
from connreset.lab.backend import LabBackend
from connreset.lab.kmsg import KernelLog
from connreset.testbed import BaseNodeAccess, ClusterBackend, NodeInfo
from connreset.testbed.access import NODE_CAPABILITIES
from connreset.watchdog import LocalLink, WatchdogLink


def _host_global(path: str) -> str | None:
    """The sysctl key for a ``/proc/sys`` path of a machine-wide key, else None."""
    if not path.startswith("/proc/sys/"):
        return None
    key = path.removeprefix("/proc/sys/").replace("/", ".")
    return key if sysctl.is_host_global(key) else None


class LabKernel(NodeKernel):
    """A lab node's kernel verbs, with the table-full lines from the lab's kernel-log watcher."""

    def __init__(self, access: LabNodeAccess, name: str, kernel_log: KernelLog, ns_inode: int) -> None:
        super().__init__(access, name)
        self._kernel_log = kernel_log
        self._inode = ns_inode

    async def netns_inode(self) -> int:
        return self._inode

    async def table_full_lines(self) -> list[str]:
        return list(self._kernel_log.lines.get(self._inode, []))

    async def table_full_count(self) -> int:
        return self._kernel_log.counts[self._inode]


class LabNodeAccess(BaseNodeAccess):
    """Runs argv in a lab node's network namespace (``nsenter --net``); needs ``--cluster lab``.

    Machine-wide sysctls are written in this machine's initial namespace, after the lab has
    saved their originals in its state file (``connreset lab down`` restores them after a crash).
    """

    name = "lab"
    shares_kernel = True

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        self._lab: LabBackend | None = None

    def bind(self, cluster: ClusterBackend) -> None:
        """A kube-proxy without an INVALID-drop rule (nftables, IPVS) has no ``iptables`` fix to
        add: ``ApplyFix("drop-invalid")`` is refused before the run, with the reason."""
        if isinstance(cluster, LabBackend) and not cluster.proxy.has_drop_invalid:
            self.capabilities = NODE_CAPABILITIES - {"iptables"}
            self.withheld = {"iptables": proxier.no_drop_invalid(cluster.proxy)}

    @property
    def lab(self) -> LabBackend:
        if self._lab is None:
            raise BackendError("node access lab is not open")
        return self._lab

    async def open(self, cluster: ClusterBackend, nodes: Sequence[NodeInfo]) -> None:
        if not isinstance(cluster, LabBackend):
            raise BackendError(
                f"node access 'lab' enters the lab's own namespaces; it cannot reach {cluster.name!r} "
                "nodes (choose another --node-access)"
            )
        self._lab = cluster

    async def close(self) -> None:
        self._lab = None

    def _ns(self, node: str) -> str:
        try:
            return self.lab.lab_nodes[node].ns
        except KeyError:
            raise BackendError(f"the lab has no node {node!r}") from None

    async def exec(
        self,
        node: str,
        argv: Sequence[str],
        *,
        host: bool = False,
        stdin: bytes | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        if host:
            raise BackendError("the lab runs nothing in this machine's own namespace")
        code, out, err = await asyncio.wait_for(plumbing.nsexec(self._ns(node), argv, stdin), timeout)
        return ExecResult(tuple(argv), code, out, err)

    async def read_file(self, node: str, path: str, *, host: bool = False) -> str:
        if path == conntrack.STAT_PATH:
            return Path(self.lab.lab_nodes[node].proc_net(path)).read_text()
        if host or _host_global(path):
            return Path(path).read_text()  # machine-wide: the same value in every namespace
        return await super().read_file(node, path)

    async def write_file(self, node: str, path: str, data: str, *, host: bool = False) -> None:
        if host:
            key = _host_global(path)
            if key is None:
                raise BackendError(
                    f"the lab writes only machine-wide sysctls outside its namespaces, not {path}"
                )
            lab_host.write_global(key, data)  # its original saved in the lab's state file first
            return
        await super().write_file(node, path, data)

    def watchdog_links(self, run_id: str, nodes: Sequence[str] = ()) -> Mapping[str, WatchdogLink]:
        """One watchdog on this machine for every node. If the run's controller dies, it puts the
        nodes' settings back and then removes the lab (``connreset lab down``)."""

        def enter(node: str, host: bool) -> list[str] | None:
            return [] if host else ["nsenter", f"--net={lab_host.NETNS_DIR / self._ns(node)}"]

        final = [[sys.executable, "-m", "connreset", "lab", "down", "--only-host"]]
        link = LocalLink(lab_host.watchdog_root() / run_id, enter, final)
        return {node: link for node in (nodes or self.lab.lab_nodes)}  # `restore`: before the lab opens

    def kernel(self, node: str) -> NodeKernel:
        lab_node = self.lab.lab_nodes[node]
        return LabKernel(self, node, self.lab.kernel_log, lab_node.ns_inode)

    async def preview_file(self, node: str, path: str) -> str | None:
        """Machine-wide sysctls can be read before the lab exists; a node's own values cannot."""
        if _host_global(path):
            return Path(path).read_text()
        return None
