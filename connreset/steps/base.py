"""The step base class, the composition of steps, and the context the engine hands a running step.

Composition: ``a >> b`` runs in order, ``a | b`` runs concurrently. Composites are plain frozen
data, flattened into a DAG by :func:`flatten`, which gives every step a unique name and the set
of steps it waits for.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Union

import attrs

from connreset._support import numbers

if TYPE_CHECKING:
    from connreset.kernel.node import NodeKernel, Rule
    from connreset.testbed import ClusterBackend, DeploymentSpec, PodStatus, Testbed, Workload


#: A step, or a composition of steps (what `>>` and `|` build).
Graph = Union["Step", "Seq", "Par"]


class Composable:
    """Adds ``>>`` (sequence) and ``|`` (concurrent branches) to steps and composites."""

    def __rshift__(self, other: Graph) -> Seq:
        return Seq((*_parts(self, Seq), *_parts(other, Seq)))

    def __or__(self, other: Graph) -> Par:
        return Par((*_parts(self, Par), *_parts(other, Par)))


def _parts(node: object, kind: type) -> tuple[Graph, ...]:
    return node.items if isinstance(node, kind) else (node,)  # type: ignore[attr-defined,return-value]


@attrs.frozen
class Seq(Composable):
    """Items run one after another."""

    items: tuple[Graph, ...]


@attrs.frozen
class Par(Composable):
    """Items run as concurrent branches; what follows waits for all of them."""

    items: tuple[Graph, ...]


def sequence(*items: Graph) -> Seq:
    """``sequence(a, b, c)`` is ``a >> b >> c``."""
    return Seq(items)


def parallel(*items: Graph) -> Par:
    """``parallel(a, b, c)`` is ``a | b | c``."""
    return Par(items)


@attrs.frozen
class FlatStep:
    """A step placed in the DAG: its unique name and the names it waits for."""

    name: str
    step: Step
    deps: frozenset[str]


def flatten(root: Graph, taken: set[str]) -> list[FlatStep]:
    """The DAG of ``root``, in a topological order of composition, with unique step names."""
    out: list[FlatStep] = []

    def unique(base: str) -> str:
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}#{n}"
        taken.add(name)
        return name

    def walk(node: Graph, before: frozenset[str]) -> frozenset[str]:
        if isinstance(node, Seq):
            for item in node.items:
                before = walk(item, before)
            return before
        if isinstance(node, Par):
            return frozenset().union(*(walk(item, before) for item in node.items))
        name = unique(node.label)
        out.append(FlatStep(name, node, before))
        return frozenset({name})

    walk(root, frozenset())
    return out


@attrs.frozen
class Replicas:
    """A replica count a step sets: ``deployment`` to ``count``; ``node`` where a Deploy pins it
    (None for Scale and Delete, which keep the Deployment's node); ``deploys``: it creates it."""

    deployment: str
    count: int
    node: str | None = None
    deploys: bool = False


#: attrs validator: a finite number > 0 (NaN, infinities and bools are refused).
positive = numbers.positive_field


def non_negative(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
    """attrs validator: an int >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attribute.name} must be an integer >= 0, got {value!r}")


def node_names(value: Sequence[str] | str | None) -> tuple[str, ...] | None:
    """attrs converter: one node name or several → a tuple (None: every node)."""
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(value)


class LogView(Protocol):
    """What steps read of the pods' log lines (the engine's log index)."""

    def last_seq(self) -> int:
        """The sequence number of the newest line (0: none yet)."""
        ...

    def count(self, deployment: str, pattern: re.Pattern[str], after: int = 0) -> int:
        """Lines of the deployment's pods matching ``pattern``, newer than ``after``."""
        ...

    def since(self, deployment: str, after: int = 0) -> list[str]:
        """The deployment's lines newer than ``after``."""
        ...

    async def wait_for(self, deployment: str, pattern: re.Pattern[str], within: float) -> str | None:
        """The first line matching ``pattern`` within ``within`` seconds (None: none came)."""
        ...


class StepContext(Protocol):
    """What a step may do while it runs. Implemented by the engine."""

    testbed: Testbed
    phase: str
    step: str
    run_id: str

    @property
    def logs(self) -> LogView:
        """Every pod's log lines so far, fed by the cluster's log stream."""
        ...

    state: dict[str, object]
    """Scratch space shared by the steps of one run (e.g. counters to report deltas)."""

    @property
    def cluster(self) -> ClusterBackend: ...

    def nodes(self, names: Sequence[str] | None = None) -> Sequence[NodeKernel]: ...

    async def set_sysctl(self, node: NodeKernel, key: str, value: str) -> str:
        """Journal the undo, then write; returns the previous value."""
        ...

    async def add_rule(self, node: NodeKernel, rule: Rule) -> bool:
        """Journal the undo, then insert the rule; a rule already there (kube-proxy's own, say)
        is left as it is, with no undo: False."""
        ...

    async def deploy(self, spec: DeploymentSpec) -> None:
        """Refuse a name this run did not create; journal the undo (delete); deploy with the
        run's id as a label."""
        ...

    async def scale(self, deployment: str, replicas: int) -> None:
        """Journal the undo (the spec's replicas), then scale."""
        ...

    async def delete(self, deployment: str) -> None:
        """Delete a Deployment this run created (refuse any other)."""
        ...

    async def pods(self, deployment: str) -> list[PodStatus]:
        """The deployment's pods, from the cluster; published (a PodStates event) when they changed."""
        ...

    def progress(self, done: float, total: float, unit: str = "", detail: str = "") -> None:
        """How far a long step has got, for people (console, TUI); not journaled."""
        ...

    def sample(self, node: str, metric: str, value: float) -> None: ...

    def finding(self, key: str, value: object) -> None: ...

    def note(self, message: str) -> None:
        """A line of progress for people (console, TUI), kept in the step's detail."""
        ...


@attrs.frozen(kw_only=True)
class Step(Composable):
    """Base of all steps: frozen data, validated on construction, run by the engine.

    Args:
        name: a unique name in the experiment; derived from the step when omitted.
        timeout: seconds this step may take before it is an error.
        after: names of other steps this one waits for, beyond its place in the graph.
    """

    kind: ClassVar[str] = "step"
    requires: ClassVar[frozenset[str]] = frozenset()
    mutating: ClassVar[bool] = False

    name: str | None = attrs.field(default=None, kw_only=True)
    timeout: float | None = attrs.field(default=None, kw_only=True, validator=numbers.positive_or_none_field)
    after: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=tuple)

    @property
    def label(self) -> str:
        return self.name or self.default_name()

    def default_name(self) -> str:
        return self.kind

    async def run(self, ctx: StepContext) -> str | None:
        """Do the step; return a short detail for the journal. Raise ExpectationFailed on a miss."""
        raise NotImplementedError

    async def plan(self, testbed: Testbed) -> list[str]:
        """Lines for ``--dry-run``: what this step would change, read-only (the testbed is not open)."""
        return []

    def creates(self) -> tuple[str, ...]:
        """Names of the Deployments this step creates (checked for clashes before a run)."""
        return ()

    def target_nodes(self) -> tuple[str, ...]:
        """The nodes this step names (checked against the testbed's before a run)."""
        return ()

    def sets_replicas(self) -> Replicas | None:
        """The replica count this step sets, if it sets one (checked against capacity)."""
        return None

    def workloads(self) -> tuple[Workload, ...]:
        """The workloads this step runs (each backend refuses the kinds it cannot run)."""
        return ()

    def describe(self) -> str:
        return self.default_name()
