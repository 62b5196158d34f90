"""The ``docker`` node access: kind nodes through ``docker exec``, with the real ``docker`` CLI.

``--node-access docker --node-opt cluster=NAME``: the nodes are the containers labelled
``io.x-k8s.kind.cluster=NAME``, each the Kubernetes node of the same name
(:mod:`connreset.docker.nodes`). Each argv runs as ``docker exec -i CONTAINER ARGV`` (stdin
piped); conntrack's counters come from one sampler shell per node
(:mod:`connreset.docker.sampler`). kind's nodes share this machine's kernel
(``shares_kernel``): machine-wide sysctls are refused before the run unless
``host_sysctls=allow``, and then written through a privileged helper container in the host's
network namespace (:mod:`connreset.docker.helper`).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence

from connreset._support.logs import get_logger
from connreset.docker import errors, nodes
from connreset.docker.engine import DockerCli
from connreset.docker.helper import HostHelper
from connreset.docker.nodes import KindNode
from connreset.docker.options import DockerOptions
from connreset.docker.sampler import Sampler
from connreset.errors import BackendError, NodeUnavailable, TimedOut, ValidationError
from connreset.kernel import conntrack
from connreset.kernel.node import ExecResult
from connreset.testbed.access import NODE_CAPABILITIES, BaseNodeAccess
from connreset.testbed.cluster import ClusterBackend, NodeInfo

__all__ = ["DockerNodeAccess"]

log = get_logger(__name__)


class DockerNodeAccess(BaseNodeAccess):
    """Node access into kind node containers, through the ``docker`` CLI.

    Args:
        cluster: the kind cluster's name (required).
        host_sysctls: ``allow`` or ``refuse`` (default): whether machine-wide sysctls may be written
            through a privileged helper container in the host's network namespace.
        docker: the ``docker`` CLI, by name or path (default ``docker``); it honours ``DOCKER_HOST``.
        timeout: seconds a command may take when its caller gives none (default 60).

    Raises:
        ValidationError: an option is missing, unknown or invalid (before anything is touched).
    """

    name = "docker"
    shares_kernel = True
    runs_watchdog = True  # in each node container, if it has python3 (the machine-wide sysctls: not)

    Options = DockerOptions
    options: DockerOptions

    def __init__(self, **options: object) -> None:
        if not options.get("cluster"):
            raise ValidationError(
                "the docker node access needs --node-opt cluster=NAME, the kind cluster whose node "
                "containers to use (`kind get clusters` lists them)"
            )
        super().__init__(**options)
        self.capabilities = (
            NODE_CAPABILITIES if self.options.allow_host else NODE_CAPABILITIES - {"host-sysctl"}
        )
        self.cli = DockerCli(self.options.docker, self.options.timeout)
        self.helper = HostHelper(self.cli, secrets.token_hex(6))
        self.nodes: dict[str, KindNode] = {}
        self._samplers: dict[str, Sampler] = {}
        self._run_id: str | None = None

    def __repr__(self) -> str:
        return f"<DockerNodeAccess cluster={self.options.cluster} {len(self.nodes)} node(s)>"

    @property
    def withheld(self) -> Mapping[str, str]:  # type: ignore[override]
        """Why a capability is missing, for the refusal before the run."""
        if self.options.allow_host:
            return {}
        return {"host-sysctl": errors.no_host_sysctl(self.options.cluster)}

    # -- opening ----------------------------------------------------------------------------------
    async def open(self, cluster: ClusterBackend, nodes_: Sequence[NodeInfo]) -> None:
        """Find every inventory node's container; check the CLI and the engine first.

        Raises:
            ToolMissing: the CLI is missing.
            Unreachable: the engine is unreachable (saying where it was looked for).
            NodeUnavailable: a node has no container, or it is not running (naming the label to
                check).
        """
        version = await self.cli.server_version()
        found = await nodes.discover(self.cli, self.options.cluster)
        self.nodes = nodes.select(self.options.cluster, found, [n.name for n in nodes_])
        self._samplers = {
            name: Sampler(self.cli, name, node.name, self.options.cluster)
            for name, node in self.nodes.items()
        }
        log.info(
            "docker node access open",
            cluster=self.options.cluster,
            engine=version,
            nodes=sorted(self.nodes),
            host_sysctls=self.options.host_sysctls,
        )

    async def close(self) -> None:
        """Stop the sampler shells and remove the helper containers this access made."""
        samplers, self._samplers = list(self._samplers.values()), {}
        for sampler in samplers:
            await sampler.close()
        try:
            if self.options.allow_host:
                await self.helper.remove_own()
        finally:
            self.nodes = {}

    async def begin_run(self, run_id: str) -> None:
        self._run_id = run_id
        self.helper.forget()

    async def end_run(self, run_id: str) -> Sequence[str]:
        """Remove the host-sysctl helper containers labelled with the run's id."""
        if self._run_id == run_id:
            self._run_id = None
        if not self.options.allow_host:
            return []
        return await self.helper.remove_run(run_id)

    def _node(self, node: str) -> KindNode:
        found = self.nodes.get(node)
        if found is None:
            if not self.nodes:
                raise BackendError(f"{node}: the docker node access is not open", node=node)
            raise NodeUnavailable(
                errors.missing_nodes(self.options.cluster, [node], list(self.nodes)), node=node
            )
        return found

    # -- commands ---------------------------------------------------------------------------------
    async def exec(
        self,
        node: str,
        argv: Sequence[str],
        *,
        host: bool = False,
        stdin: bytes | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        """``docker exec -i CONTAINER ARGV`` on the node, or in the host helper with ``host=True``.

        Raises:
            TimedOut: the command did not finish within its timeout (the CLI was killed).
            NodeUnavailable: the node's container is gone or stopped.
            Unreachable: the engine is unreachable.
            BackendError: the engine refused otherwise, or ``host=True`` without
                ``host_sysctls=allow``.
        """
        if not argv:
            raise BackendError(f"{node}: nothing to run (empty argv)", node=node)
        kind_node = self._node(node)
        if host:
            if not self.options.allow_host:
                raise BackendError(errors.host_refused(node), node=node)
            container = await self.helper.ensure(kind_node, self._run_id)
        else:
            container = kind_node.name
        limit = timeout if timeout is not None else self.options.timeout
        try:
            result = await self.cli.run(["exec", "-i", container, *argv], stdin=stdin, timeout=limit)
        except TimeoutError:
            raise TimedOut(errors.timed_out(node, argv, limit), node=node) from None
        if not result.ok and errors.is_daemon_error(result.stderr):
            raise errors.daemon_failure(node, container, result.stderr, self.options.cluster)
        return ExecResult(tuple(argv), result.returncode, result.stdout, result.stderr)

    async def read_file(self, node: str, path: str, *, host: bool = False) -> str:
        """conntrack's counters come from the node's sampler shell; other files through ``cat``."""
        if path == conntrack.STAT_PATH and not host:
            self._node(node)
            return await self._samplers[node].sample(self.options.timeout)
        return await super().read_file(node, path, host=host)
