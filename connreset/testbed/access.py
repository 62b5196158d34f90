"""The node access role: run an argv and read and write files on a named node.

A node access is how connreset reaches the nodes' kernels: the lab enters their namespaces, SSH
logs in, ``docker exec`` enters a kind node, a debug pod runs on a managed one. The kernel verbs
(sysctls, iptables, conntrack) are written once, in :class:`connreset.kernel.NodeKernel`, on top
of these three operations. :class:`BaseNodeAccess` implements file reads and writes over exec,
so a new node access needs little more than :meth:`exec`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from connreset.errors import BackendError
from connreset.kernel.node import ExecResult, NodeIO, NodeKernel
from connreset.testbed import options as opts
from connreset.watchdog import ExecLink, WatchdogLink

if TYPE_CHECKING:
    from connreset.testbed.cluster import ClusterBackend, NodeInfo

#: What a node access can do: run argv, and the kernel verbs built on it. ``host-sysctl``: it can
#: write the machine-wide ``nf_conntrack_max``/``nf_conntrack_buckets`` (the kernel's initial
#: namespace is reachable).
NODE_CAPABILITIES = frozenset({"exec", "sysctl", "iptables", "conntrack", "host-sysctl"})


@runtime_checkable
class NodeAccess(NodeIO, Protocol):
    """A way into the nodes' kernels, opened after the cluster and closed before it: the whole
    contract. The three :class:`~connreset.kernel.node.NodeIO` operations (exec, read_file,
    write_file) plus what follows.

    ``shares_kernel`` is True when the nodes share one kernel with each other or with the machine
    connreset runs on (the lab, kind): machine-wide sysctls are then set once for all nodes.
    ``withheld`` maps a capability it lacks to why (for the validation message).

    Subclass :class:`BaseNodeAccess`: every hook has a documented default there, and file reads
    and writes go over exec, so a new node access needs little more than :meth:`exec`.
    """

    name: str
    capabilities: frozenset[str]
    shares_kernel: bool
    withheld: Mapping[str, str]
    options: Any

    def bind(self, cluster: ClusterBackend) -> None:
        """The testbed is composed with ``cluster`` (nothing is open yet): learn what its
        options tell (``kubectl-debug`` withholds ``host-sysctl`` on a kind context)."""
        ...

    def plan_run(self, run_id: str) -> list[str]:
        """Lines for ``--dry-run``: what :meth:`begin_run` and first use would make."""
        ...

    async def open(self, cluster: ClusterBackend, nodes: Sequence[NodeInfo]) -> None: ...

    async def close(self) -> None: ...

    async def begin_run(self, run_id: str) -> None:
        """A run starts; anything the access creates on the nodes carries ``run_id``."""
        ...

    async def end_run(self, run_id: str) -> Sequence[str]:
        """Remove what the access made for that run (debug pods, helpers); also on restore."""
        ...

    async def resume_run(self, run_id: str) -> None:
        """``connreset restore``: act on an interrupted run's helpers again, creating nothing."""
        ...

    def kernel(self, node: str) -> NodeKernel:
        """The kernel verbs for one node."""
        ...

    async def preview_file(self, node: str, path: str) -> str | None:
        """Read a file without opening anything, for ``--dry-run`` (None: not knowable yet)."""
        ...

    def watchdog_links(self, run_id: str, nodes: Sequence[str]) -> Mapping[str, WatchdogLink]:
        """Where a run's node watchdogs live: node → link (empty: this access runs none)."""
        ...


class BaseNodeAccess:
    """A base for node accesses: options parsed once, file reads and writes over :meth:`exec`
    (``cat``, ``tee``), and every other hook a documented default.

    A subclass sets ``name`` and ``Options`` (a frozen attrs class of
    :func:`connreset.testbed.options.option` fields) and implements :meth:`exec`. With
    ``runs_watchdog = True``, :meth:`watchdog_links` gives each node a watchdog over
    :meth:`exec` (it needs python3 ≥ 3.8 on the node).
    """

    name = "base"
    Options: type = opts.NoOptions
    #: the parsed options (set by ``__init__``; a subclass that does not call it has none)
    options: Any = opts.NoOptions()
    capabilities: frozenset[str] = NODE_CAPABILITIES
    shares_kernel = False
    #: capability -> why this access lacks it (shown when a step needs it)
    withheld: Mapping[str, str] = {}
    #: whether each run leaves a watchdog on each node, through exec
    runs_watchdog = False
    #: where on the node: ``DIR/RUN_ID-NODE`` (0700)
    watchdog_dir = "/run/connreset-watchdog"

    def __init__(self, **options: object) -> None:
        self.options = opts.parse(self.Options, options, f"node access {self.name!r}")

    def bind(self, cluster: ClusterBackend) -> None:
        """The testbed is composed with ``cluster`` (nothing is open yet)."""
        return None

    def plan_run(self, run_id: str) -> list[str]:
        """Lines for ``--dry-run``: what :meth:`begin_run` and first use would make."""
        return []

    def watchdog_enter(self, node: str, host: bool) -> Sequence[str] | None:
        """The prefix that runs a watchdog's argv where an undo belongs: nothing for the node's
        own settings (the watchdog runs there); None (out of reach) for the machine's own
        namespace unless a node access says how."""
        return None if host else []

    def watchdog_links(self, run_id: str, nodes: Sequence[str]) -> Mapping[str, WatchdogLink]:
        if not self.runs_watchdog:
            return {}
        return {n: ExecLink(self, n, f"{self.watchdog_dir}/{run_id}-{n}", self.watchdog_enter) for n in nodes}

    async def open(self, cluster: ClusterBackend, nodes: Sequence[NodeInfo]) -> None:
        return None

    async def close(self) -> None:
        return None

    async def begin_run(self, run_id: str) -> None:
        return None

    async def end_run(self, run_id: str) -> Sequence[str]:
        return []

    async def resume_run(self, run_id: str) -> None:
        return None

    async def exec(
        self,
        node: str,
        argv: Sequence[str],
        *,
        host: bool = False,
        stdin: bytes | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        raise NotImplementedError

    async def read_file(self, node: str, path: str, *, host: bool = False) -> str:
        result = await self.exec(node, ["cat", "--", path], host=host)
        if not result.ok:
            raise BackendError(f"{node}: cannot read {path}: {result.stderr.strip()[:300]}")
        return result.stdout

    async def write_file(self, node: str, path: str, data: str, *, host: bool = False) -> None:
        result = await self.exec(node, ["tee", "--", path], host=host, stdin=data.encode())
        if not result.ok:
            raise BackendError(f"{node}: cannot write {path}: {result.stderr.strip()[:300]}")

    def kernel(self, node: str) -> NodeKernel:
        return NodeKernel(self, node)

    async def preview_file(self, node: str, path: str) -> str | None:
        return None
