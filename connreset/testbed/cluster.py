"""The cluster backend role: workloads on the nodes, and the node inventory.

A cluster backend deploys, scales and deletes Deployments, reports pods with their states and
restart counts, streams pod log lines, and lists its nodes. It does not reach into the nodes'
kernels: that is the node access's job (:mod:`connreset.testbed.access`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal, Protocol, runtime_checkable

import attrs

from connreset.probes import Liveness

PodPhase = Literal["Pending", "Running", "Error", "CrashLoopBackOff", "Completed"]

#: The label every object a run creates carries; undo deletes only what carries the run's id.
RUN_LABEL = "connreset.io/run-id"


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
    liveness: Liveness | None = None
    """kubelet's liveness probe for its pods (:mod:`connreset.probes`); None: no probe."""

    @property
    def run_id(self) -> str | None:
        """The id of the run that created it (None: not created by connreset)."""
        return self.labels.get(RUN_LABEL)


@attrs.frozen
class PodStatus:
    """A pod as ``kubectl get pods`` shows it.

    ``crash_stand_in`` is filled by the cluster backend when the pod keeps running where the
    lab's version of its workload exits: a regex for the log line it writes instead. The in-tree
    boom-server image (1.4) logs ``ERROR: RST received`` and carries on, where the lab's (like
    the original anfernee image) exits and goes CrashLoopBackOff. None: it exits as the lab's
    does. :class:`~connreset.steps.cluster.AssertCrashLoop` counts such a line as the crash, and
    says so.
    """

    name: str
    deployment: str
    node: str
    ip: str
    phase: PodPhase
    restarts: int
    crash_stand_in: str | None = None


@attrs.frozen
class NodeInfo:
    """One node of the inventory: its name and the address it is reached at on the cluster."""

    name: str
    address: str | None = None


#: ``sink(deployment, pod, line)``, called for every line a pod writes, earlier containers' too.
LogSink = Callable[[str, str, str], None]


@attrs.frozen
class Capacity:
    """How many pods a cluster can run at once: in all, and on one node.

    ``per_node`` (None: no limit of its own) bounds the pods pinned to one node, plus that node's
    share of the others, spread over ``nodes`` nodes. ``why`` says where the numbers come from,
    for the message that refuses a plan (``2 nodes × 1020 pod addresses``).
    """

    pods: int = attrs.field(validator=attrs.validators.ge(0))
    per_node: int | None = None
    nodes: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    why: str = ""


def capacity(cluster: ClusterBackend) -> Capacity | None:
    """The cluster's capacity, from its optional ``capacity()`` method (None: it does not say).

    A backend that knows how many pods it can hold says so, and a plan asking for more is
    refused before anything runs (:mod:`connreset.capacity`) instead of failing halfway. The
    method may return None until the cluster is open (a real cluster's allocatable pods).
    """
    hook = getattr(cluster, "capacity", None)
    found = hook() if callable(hook) else None
    return found if isinstance(found, Capacity) else None


def deploy_notes(cluster: ClusterBackend, spec: DeploymentSpec) -> list[str]:
    """Where running ``spec`` on ``cluster`` differs from what it asks, in words.

    A backend that cannot honour a workload setting runs what it can and says so here (the
    optional ``deploy_notes(spec)`` method; none means no difference): ``--dry-run`` prints these
    lines, and a Deploy step puts them in its detail and notes, so the journal says what ran.
    """
    hook = getattr(cluster, "deploy_notes", None)
    return list(hook(spec)) if hook is not None else []


def plan_run(part: object, run_id: str) -> list[str]:
    """Lines for ``--dry-run``: what a cluster backend or node access would make for a run
    itself (the optional ``plan_run(run_id)`` method: a namespace, debug pods)."""
    hook = getattr(part, "plan_run", None)
    return list(hook(run_id)) if hook is not None else []


@runtime_checkable
class ClusterBackend(Protocol):
    """Workloads on the nodes, for the length of an open testbed.

    ``capabilities`` is a subset of ``{"cluster", "logs"}``; ``default_node_access`` names the
    node access used when none is chosen (the lab's is ``lab``).
    """

    name: str
    capabilities: frozenset[str]
    default_node_access: str

    def node_names(self) -> Sequence[str] | None:
        """The node names, known without opening (None: only known once open)."""
        ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def inventory(self) -> Sequence[NodeInfo]:
        """The nodes, once open."""
        ...

    async def begin_run(self, run_id: str) -> None:
        """A run starts on the open cluster; what it creates will carry ``run_id``."""
        ...

    async def end_run(self, run_id: str) -> Sequence[str]:
        """Remove what the backend itself made for that run (not its Deployments: those are
        undone one by one); also called by ``connreset restore``. Returns lines saying what."""
        ...

    def plan_deploy(self, spec: DeploymentSpec) -> list[str]:
        """Lines for ``--dry-run``: what deploying ``spec`` would create (e.g. manifests)."""
        ...

    async def deploy(self, spec: DeploymentSpec) -> None:
        """Create the Deployment (and its Service). Raises BackendError if the name exists."""
        ...

    async def scale(self, deployment: str, replicas: int) -> None:
        """Set the replicas; return once new pods have started."""
        ...

    async def get(self, deployment: str) -> DeploymentSpec | None:
        """The Deployment as it is now (replicas from its spec, labels), or None."""
        ...

    async def pods(self, deployment: str | None = None) -> list[PodStatus]: ...

    async def delete(self, deployment: str) -> None:
        """Delete the Deployment and its Service; nothing if it does not exist."""
        ...

    def stream_logs(self, sink: LogSink | None) -> None:
        """Hand every new pod log line to ``sink`` (None stops)."""
        ...
