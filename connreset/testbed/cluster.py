"""The cluster backend role: workloads on the nodes, and the node inventory.

A cluster backend deploys, scales and deletes Deployments, reports pods with their states and
restart counts, streams pod log lines, and lists its nodes. It does not reach into the nodes'
kernels: that is the node access's job (:mod:`connreset.testbed.access`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import attrs

from connreset.testbed import options as opts
from connreset.testbed.probes import Liveness
from connreset.testbed.workloads import Workload

PodPhase = Literal["Pending", "Running", "Error", "CrashLoopBackOff", "Completed"]

#: The label every object a run creates carries; undo deletes only what carries the run's id.
RUN_LABEL = "connreset.io/run-id"


@attrs.frozen
class DeploymentSpec:
    """A Deployment: replicas of one workload, optionally pinned to a node and behind a Service.

    ``service_port`` is the Service's port; it targets ``workload.listens_on`` (the same port when
    the workload does not say).
    """

    name: str
    workload: Workload
    replicas: int
    node: str | None = None
    service_port: int | None = None
    labels: Mapping[str, str] = attrs.field(factory=dict)
    liveness: Liveness | None = None
    """kubelet's liveness probe for its pods (:mod:`connreset.testbed.probes`); None: no probe."""

    @property
    def run_id(self) -> str | None:
        """The id of the run that created it (None: not created by connreset)."""
        return self.labels.get(RUN_LABEL)

    @property
    def target_port(self) -> int | None:
        """The port the Service targets: where the workload listens, else the Service's port."""
        return self.workload.listens_on or self.service_port


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


@runtime_checkable
class ClusterBackend(Protocol):
    """Workloads on the nodes, for the length of an open testbed: the whole contract.

    ``capabilities`` is a subset of ``{"cluster", "logs"}``; ``default_node_access`` names the
    node access used when none is chosen (the lab's is ``lab``). ``options`` holds the validated
    options (an instance of the class named by ``Options``).

    Subclass :class:`BaseClusterBackend`: it has every hook below marked *optional* as a
    documented no-op, so a backend writes only what it does.
    """

    name: str
    capabilities: frozenset[str]
    default_node_access: str
    options: Any

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

    # -- optional hooks (BaseClusterBackend has each as a no-op) --------------------------------
    def refuses(self, workload: Workload) -> str | None:
        """Why this backend cannot run ``workload`` (None: it can). Asked for every Deploy
        before anything runs."""
        ...

    def capacity(self) -> Capacity | None:
        """How many pods it can hold (None: it does not say). A plan asking for more is refused
        before anything runs. May be None until the cluster is open."""
        ...

    def deploy_notes(self, spec: DeploymentSpec) -> list[str]:
        """Where running ``spec`` differs from what it asks, in words (``--dry-run`` prints them,
        a Deploy step keeps them in its detail)."""
        ...

    def plan_run(self, run_id: str) -> list[str]:
        """Lines for ``--dry-run``: what :meth:`begin_run` would make (a namespace)."""
        ...

    def fingerprint(self) -> Mapping[str, Any]:
        """What the run ran on (versions, modes), for the journal's environment; once open."""
        ...

    async def resume_run(self, run_id: str) -> None:
        """``connreset restore``: act on an interrupted run's objects again, creating nothing."""
        ...


class BaseClusterBackend:
    """A base for cluster backends: options parsed once, every optional hook a no-op.

    A subclass sets ``name``, ``capabilities``, ``default_node_access`` and ``Options`` (a frozen
    attrs class of :func:`connreset.testbed.options.option` fields), and implements the
    protocol's required methods: open/close, inventory, deploy/scale/get/pods/delete,
    stream_logs. ``__init__(**options)`` takes strings (from the command line) or typed values,
    and raises ValidationError naming a bad option before anything is touched.
    """

    name: str = "base"
    capabilities: frozenset[str] = frozenset({"cluster", "logs"})
    default_node_access: str = ""
    Options: ClassVar[type] = opts.NoOptions
    #: the parsed options (set by ``__init__``; a subclass that does not call it has none)
    options: Any = opts.NoOptions()

    def __init__(self, **options: object) -> None:
        self.options = opts.parse(self.Options, options, f"cluster backend {self.name!r}")

    def node_names(self) -> Sequence[str] | None:
        return None

    async def begin_run(self, run_id: str) -> None:
        return None

    async def end_run(self, run_id: str) -> Sequence[str]:
        return []

    def plan_deploy(self, spec: DeploymentSpec) -> list[str]:
        return []

    def refuses(self, workload: Workload) -> str | None:
        return None

    def capacity(self) -> Capacity | None:
        return None

    def deploy_notes(self, spec: DeploymentSpec) -> list[str]:
        return []

    def plan_run(self, run_id: str) -> list[str]:
        return []

    def fingerprint(self) -> Mapping[str, Any]:
        return {}

    async def resume_run(self, run_id: str) -> None:
        return None
