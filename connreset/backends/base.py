"""The two backend interfaces, and the plain data they exchange with steps.

A *cluster* runs workloads: deploy, scale, pod states with restart counts, logs, delete.
A *node* is one machine's kernel: exec argv, sysctls, iptables rules, conntrack.
A :class:`Backend` bundles the two for a run, and says which capabilities it has so that an
experiment can be refused before anything is touched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Literal, Protocol, runtime_checkable

import attrs

Capability = Literal["cluster", "logs", "sysctl", "iptables", "conntrack", "exec"]
PodPhase = Literal["Pending", "Running", "Error", "CrashLoopBackOff", "Completed"]


@attrs.frozen
class ExecResult:
    """What an argv run on a node returned."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@attrs.frozen
class Rule:
    """One iptables rule as kube-proxy writes it: table, chain and the match/target argv."""

    table: str
    chain: str
    args: tuple[str, ...]

    def spec(self) -> str:
        return f"-t {self.table} -A {self.chain} {' '.join(self.args)}"


@attrs.frozen
class Workload:
    """What a pod runs: a built-in workload by name with its settings, or a plain argv."""

    name: str
    argv: tuple[str, ...] = ()
    settings: Mapping[str, object] = attrs.field(factory=dict)


@attrs.frozen
class DeploymentSpec:
    """A Deployment: replicas of one workload, optionally pinned to a node and behind a Service."""

    name: str
    workload: Workload
    replicas: int
    node: str | None = None
    service_port: int | None = None
    labels: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class PodStatus:
    """A pod as ``kubectl get pods`` shows it."""

    name: str
    deployment: str
    node: str
    ip: str
    phase: PodPhase
    restarts: int


@runtime_checkable
class Node(Protocol):
    """One node's kernel."""

    name: str

    async def exec(self, argv: Sequence[str], *, timeout: float | None = None) -> ExecResult: ...
    async def read_sysctl(self, key: str) -> str: ...
    async def write_sysctl(self, key: str, value: str) -> None: ...
    async def add_rule(self, rule: Rule) -> None: ...
    async def remove_rule(self, rule: Rule) -> None: ...
    async def has_rule(self, rule: Rule) -> bool: ...
    async def conntrack_count(self) -> int: ...
    async def conntrack_stats(self) -> Mapping[str, int]: ...
    async def kernel(self) -> str: ...


@runtime_checkable
class Cluster(Protocol):
    """Workloads on the nodes."""

    async def deploy(self, spec: DeploymentSpec) -> None: ...
    async def scale(self, deployment: str, replicas: int) -> None: ...
    async def pods(self, deployment: str | None = None) -> list[PodStatus]: ...
    async def logs(self, pod: str) -> list[str]: ...
    async def delete(self, deployment: str) -> None: ...


@runtime_checkable
class StreamsPodLogs(Protocol):
    """A backend that can hand each pod log line to the engine as it is written."""

    def stream_pod_logs(self, sink: Callable[[str, str], None] | None) -> None:
        """Call ``sink(pod, line)`` for every new line (None stops)."""
        ...


class Backend(Protocol):
    """A cluster and its nodes, opened for the length of a run."""

    name: str
    capabilities: frozenset[str]

    @property
    def cluster(self) -> Cluster: ...

    def nodes(self) -> Sequence[Node]: ...

    def sysctl_scope(self, key: str) -> Literal["node", "host"]:
        """``host`` when writing the key on one node changes it for every node of this backend."""
        ...

    async def preview_sysctl(self, node: str, key: str) -> str | None:
        """The current value for a dry-run, read without setting anything up (None: unknown)."""
        ...

    def node_names(self) -> Sequence[str]:
        """The node names, known without opening the backend."""
        ...

    async def __aenter__(self) -> Backend: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
