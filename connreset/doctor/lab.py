"""The lab as it stands, read in place: what ``connreset doctor --cluster lab`` reads.

Opening the lab backend builds (or adopts and resets) the lab, and closing it removes it: right for
a run, wrong for a check that must leave every node byte-identical. :class:`StandingLab` is a
cluster backend that opens onto the namespaces ``connreset lab up`` (or a run in progress) left,
builds nothing, deploys nothing and removes nothing; :class:`StandingLabAccess` enters those
namespaces to read them (``nsenter --net``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

from connreset.doctor.facts import DMESG_STAMPED
from connreset.errors import BackendError, ValidationError
from connreset.kernel import conntrack
from connreset.kernel.node import ExecResult, NodeIO, NodeKernel
from connreset.lab import addressing as addr
from connreset.lab import host, plumbing
from connreset.testbed import (
    BaseClusterBackend,
    BaseNodeAccess,
    ClusterBackend,
    DeploymentSpec,
    LogSink,
    NodeInfo,
    PodStatus,
)
from connreset.testbed.registry import NODE_ACCESS, _make
from connreset.testbed.testbed import Testbed, TestbedSpec


def standing_nodes() -> dict[str, str]:
    """Node name → namespace, for the lab's node namespaces that exist now."""
    present = set(host.lab_namespaces())
    return {addr.node_name(i): addr.node_ns(i) for i in range(addr.MAX_NODES) if addr.node_ns(i) in present}


class StandingLab(BaseClusterBackend):
    """The lab's existing nodes, as a cluster backend that changes nothing (see the module)."""

    name = "lab"
    capabilities = frozenset({"cluster"})
    default_node_access = "lab"

    def __init__(self) -> None:
        super().__init__()
        self.nodes: dict[str, str] = standing_nodes()  # a directory listing: known before opening

    def node_names(self) -> Sequence[str] | None:
        return list(self.nodes) or None

    async def open(self) -> None:
        host.require_root()
        self.nodes = standing_nodes()
        if not self.nodes:
            raise BackendError("no lab is up: start one with `connreset lab up`, then run the doctor")

    async def close(self) -> None:
        return None

    async def inventory(self) -> Sequence[NodeInfo]:
        index = {addr.node_name(i): i for i in range(addr.MAX_NODES)}
        return [NodeInfo(n, addr.node_ip(index[n])) for n in self.nodes]

    async def deploy(self, spec: DeploymentSpec) -> None:
        raise BackendError("the standing lab is read in place: it deploys nothing")

    async def scale(self, deployment: str, replicas: int) -> None:
        raise BackendError("the standing lab is read in place: it scales nothing")

    async def get(self, deployment: str) -> DeploymentSpec | None:
        return None

    async def pods(self, deployment: str | None = None) -> list[PodStatus]:
        return []

    async def delete(self, deployment: str) -> None:
        raise BackendError("the standing lab is read in place: it deletes nothing")

    def stream_logs(self, sink: LogSink | None) -> None:
        return None


class StandingLabKernel(NodeKernel):
    """A standing lab node: its table-full lines are those logged since its namespace was made.

    The kernel names a namespace by its inode, and inodes are reused: lines an earlier lab's
    namespace left under the same number are not this node's.
    """

    def __init__(self, access: NodeIO, name: str, ns: str) -> None:
        super().__init__(access, name)
        self._ns = ns

    async def table_full_lines(self) -> list[str]:
        """Read on this machine: the kernel log is machine-wide, and the lab is on this machine
        (its namespace file's inode is the namespace's, as the kernel's lines name it)."""
        proc = await asyncio.create_subprocess_exec(
            *DMESG_STAMPED, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise BackendError(
                f"`{' '.join(DMESG_STAMPED)}` failed: {err.decode(errors='replace').strip()[:300]}"
            )
        made = (host.NETNS_DIR / self._ns).stat()
        booted = time.time() - float(Path("/proc/uptime").read_text().split()[0])
        recent = []
        for line in out.decode(errors="replace").splitlines():
            stamp, sep, text = line.partition("]")
            try:
                at = booted + float(stamp.strip("[ "))
            except ValueError:
                continue
            if sep and at >= made.st_mtime:
                recent.append(text)
        return conntrack.table_full_lines(recent, made.st_ino)


class StandingLabAccess(BaseNodeAccess):
    """Runs argv in a standing lab node's network namespace (``nsenter --net``)."""

    name = "lab"
    shares_kernel = True

    def __init__(self) -> None:
        super().__init__()
        self._nodes: dict[str, str] = {}

    async def open(self, cluster: ClusterBackend, nodes: Sequence[NodeInfo]) -> None:
        if not isinstance(cluster, StandingLab):
            raise BackendError(
                f"this node access enters the lab's namespaces; it cannot reach {cluster.name!r}"
            )
        self._nodes = dict(cluster.nodes)

    async def close(self) -> None:
        self._nodes = {}

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
            raise BackendError("the doctor runs nothing in this machine's own namespace")
        ns = self._nodes.get(node)
        if ns is None:
            raise BackendError(f"the lab has no node {node!r}")
        code, out, err = await plumbing.nsexec(ns, argv, stdin)
        return ExecResult(tuple(argv), code, out, err)

    async def write_file(self, node: str, path: str, data: str, *, host: bool = False) -> None:
        raise BackendError(f"the doctor writes no file ({path} on {node})")

    def kernel(self, node: str) -> NodeKernel:
        ns = self._nodes.get(node)
        if ns is None:
            raise BackendError(f"the lab has no node {node!r}")
        return StandingLabKernel(self, node, ns)


#: How the journal names them, so that ``connreset restore`` reopens the standing lab (reading
#: only) rather than the lab backend, which would remove it.
CLUSTER = "connreset.doctor.lab:StandingLab"
ACCESS = "connreset.doctor.lab:StandingLabAccess"


def testbed_for(spec: TestbedSpec) -> Testbed | None:
    """The doctor's testbed for ``--cluster lab``: the standing lab, through its namespaces or
    the node access named (SSH into the same namespaces, say); None for any other cluster."""
    if spec.cluster != "lab":
        return None
    if spec.cluster_options:
        given = ", ".join(spec.cluster_options)
        raise ValidationError(f"the doctor reads the lab as it stands; it takes no --cluster-opt ({given})")
    cluster = StandingLab()
    if spec.node_access in (None, "lab"):
        if spec.node_options:
            raise ValidationError("the lab's node access takes no --node-opt")
        return Testbed(cluster, StandingLabAccess(), TestbedSpec(CLUSTER, ACCESS))
    access = _make(NODE_ACCESS, spec.node_access, spec.node_options)
    return _StandingTestbed(cluster, access, TestbedSpec(CLUSTER, spec.node_access, {}, spec.node_options))


class _StandingTestbed(Testbed):
    """The standing lab reached through another node access (SSH into its namespaces, say):
    each node's table-full lines are still those since its namespace was made."""

    cluster: StandingLab

    def node(self, name: str) -> NodeKernel:
        kernel = self._kernels.get(name)
        if kernel is None:
            ns = self.cluster.nodes.get(name)
            if ns is None:
                raise BackendError(f"the lab has no node {name!r}")
            kernel = self._kernels[name] = StandingLabKernel(self.access, name, ns)
        return kernel
