"""The step base class and the context the engine hands to a running step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import attrs

from connreset import numbers
from connreset.graph import Composable

if TYPE_CHECKING:
    from connreset.engine.logindex import LogIndex
    from connreset.kernel.node import NodeKernel, Rule
    from connreset.testbed import ClusterBackend, DeploymentSpec, PodStatus, Testbed


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


class StepContext(Protocol):
    """What a step may do while it runs. Implemented by the engine."""

    testbed: Testbed
    phase: str
    step: str
    run_id: str
    logs: LogIndex
    """Every pod's log lines so far, fed by the cluster's log stream."""
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

    def describe(self) -> str:
        return self.default_name()
