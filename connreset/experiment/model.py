"""Experiments: named phases of step graphs, compiled and validated before anything runs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from connreset.errors import ValidationError
from connreset.experiment.claims import Claim, Conclusion
from connreset.steps.base import FlatStep, Graph, Seq, flatten

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _name(_: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if not _NAME.match(value):
        raise ValueError(f"{attribute.name} must be a simple name (letters, digits, - _ .), got {value!r}")


def _as_graph(value: Graph | Sequence[Graph]) -> Graph:
    if isinstance(value, (list, tuple)):
        return Seq(tuple(value))
    return value  # type: ignore[return-value]


@attrs.frozen
class Phase:
    """A named stage of an experiment (baseline, saturate, deplete, fix, ...).

    Phases run one after another; a phase's steps form a graph of their own.
    ``expect`` says in words what the phase should show, for the verdict table. With
    ``restore=True`` everything the phase changed is put back when it ends, so that (say) one fix
    under test does not leak into the next phase.
    """

    name: str = attrs.field(validator=_name)
    steps: Graph = attrs.field(converter=_as_graph)
    expect: str = ""
    restore: bool = False


def _phases(value: Iterable[Phase]) -> tuple[Phase, ...]:
    return tuple(value)


@attrs.frozen
class PlannedPhase:
    """A phase compiled to a DAG: steps in a topological order with their dependencies."""

    name: str
    expect: str
    steps: tuple[FlatStep, ...]
    restore: bool = False


@attrs.frozen
class Experiment:
    """A whole experiment: a name, its phases, and words for people.

    ``claims`` (:class:`~connreset.experiment.claims.Claim`) are judged against the findings when the run
    ends; ``conclusions`` give phases one line of plain words each. Neither fails a run.
    """

    name: str = attrs.field(validator=_name)
    phases: tuple[Phase, ...] = attrs.field(converter=_phases)
    description: str = ""
    claims: tuple[Claim, ...] = attrs.field(default=(), converter=tuple)
    conclusions: tuple[Conclusion, ...] = attrs.field(default=(), converter=tuple)

    @classmethod
    def single(cls, name: str, steps: Graph | Sequence[Graph], description: str = "") -> Experiment:
        """An experiment of one phase, called ``main``."""
        return cls(name, (Phase("main", steps),), description)

    def compile(self) -> tuple[PlannedPhase, ...]:
        """Flatten, name and order every step; raise ValidationError on any inconsistency."""
        if not self.phases:
            raise ValidationError(f"experiment {self.name!r} has no phases")
        seen_phases: set[str] = set()
        planned: list[PlannedPhase] = []
        for phase in self.phases:
            if phase.name in seen_phases:
                raise ValidationError(f"phase {phase.name!r} appears twice")
            seen_phases.add(phase.name)
            flat = flatten(phase.steps, set())
            planned.append(PlannedPhase(phase.name, phase.expect, _order(phase.name, flat), phase.restore))
        named = [("claim", c.phase) for c in self.claims] + [
            ("conclusion", c.phase) for c in self.conclusions
        ]
        for kind, where in named:
            if where not in seen_phases:
                raise ValidationError(f"a {kind} names unknown phase {where!r}")
        return tuple(planned)


def _order(phase: str, flat: list[FlatStep]) -> tuple[FlatStep, ...]:
    """Add ``after=`` references (within the phase) as edges, order topologically, reject cycles."""
    names = {f.name for f in flat}
    resolved: list[FlatStep] = []
    for f in flat:
        extra = set()
        for ref in f.step.after:
            if ref not in names:
                raise ValidationError(
                    f"after= names unknown step {ref!r} (steps are named per phase)", step=f.name
                )
            extra.add(ref)
        resolved.append(FlatStep(f.name, f.step, f.deps | extra))
    waiting = {f.name: set(f.deps) for f in resolved}
    by_name = {f.name: f for f in resolved}
    dependents: dict[str, list[str]] = {n: [] for n in by_name}
    for f in resolved:
        for d in f.deps:
            dependents[d].append(f.name)
    ready = [f.name for f in resolved if not f.deps]
    order: list[FlatStep] = []
    while ready:
        name = ready.pop(0)
        order.append(by_name[name])
        for dep in dependents[name]:
            waiting[dep].discard(name)
            if not waiting[dep]:
                ready.append(dep)
    if len(order) != len(resolved):
        stuck = sorted(n for n, w in waiting.items() if w)
        raise ValidationError(f"the steps {', '.join(stuck)} form a cycle in phase {phase!r}", step=stuck[0])
    return tuple(order)
