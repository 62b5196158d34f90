"""Replica counts against the cluster's capacity, read from the plan before anything runs.

A Deploy or a Scale asking for more pods than the cluster can hold would otherwise build the
testbed, deploy what fits and fail halfway ("no free pod address" in the lab). From the plan
alone, this module follows every Deployment's replica count through the phases and refuses:

- a single count over the capacity (over one node's, for a Deployment pinned to a node);
- the pods that may run at the same moment: the step's own count, plus for every other
  Deployment the largest count it may have then. Steps of a phase that run concurrently (``|``)
  may finish in either order, so a scale-down beside a scale-up is not counted as done first;
  steps ordered before (``>>``, ``after=``) are. A phase with ``restore=True`` puts its counts
  back when it ends.

Per node: the pods pinned there plus an even share of the unpinned ones (the least any spread
puts there). Only pods the plan asks for are counted: what already runs on the cluster is not
known before it is open.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import attrs

from connreset.errors import ValidationError
from connreset.experiment import PlannedPhase
from connreset.steps.base import FlatStep
from connreset.testbed.cluster import Capacity


@attrs.frozen
class _Set:
    """A step that sets a Deployment's replica count (a Delete sets it to 0)."""

    step: str
    deployment: str
    replicas: int
    node: str | None  # where a Deploy pins it; None for Scale and Delete (they keep it)
    deploys: bool


def _setting(flat: FlatStep) -> _Set | None:
    sets = flat.step.sets_replicas()
    if sets is None:
        return None
    return _Set(flat.name, sets.deployment, sets.count, sets.node, sets.deploys)


def _ancestors(steps: Sequence[FlatStep]) -> dict[str, frozenset[str]]:
    """Every step's transitive dependencies (``steps`` is in a topological order)."""
    found: dict[str, frozenset[str]] = {}
    for flat in steps:
        below: set[str] = set(flat.deps)
        for dep in flat.deps:
            below |= found.get(dep, frozenset())
        found[flat.name] = frozenset(below)
    return found


@attrs.define
class _State:
    counts: dict[str, int] = attrs.field(factory=dict)
    pinned: dict[str, str | None] = attrs.field(factory=dict)

    def copy(self) -> _State:
        return _State(dict(self.counts), dict(self.pinned))


def check_capacity(phases: Sequence[PlannedPhase], capacity: Capacity | None, backend: str) -> None:
    """Refuse a plan whose replica counts cannot fit the cluster (see the module docstring).

    Raises:
        ValidationError: naming the step, the count and the capacity.
    """
    if capacity is None:
        return
    state = _State()
    for phase in phases:
        after = _phase(phase, state, capacity, backend)
        if not phase.restore:
            state = after


def _phase(phase: PlannedPhase, start: _State, capacity: Capacity, backend: str) -> _State:
    sets = [s for s in map(_setting, phase.steps) if s is not None]
    if not sets:
        return start
    ancestors = _ancestors(phase.steps)
    pinned = dict(start.pinned)
    for s in sets:  # a Deploy's pin holds for the whole phase (a Scale keeps the Deployment's node)
        if s.deploys:
            pinned[s.deployment] = s.node
    for s in sets:
        node = pinned.get(s.deployment)
        _single(s, node, capacity, backend)
        at_once = {s.deployment: s.replicas}
        for other in {o.deployment for o in sets} | set(start.counts):
            if other != s.deployment:
                at_once[other] = max(_possible(other, s, sets, ancestors, start))
        _together(s, at_once, pinned, capacity, backend)
    end = start.copy()
    end.pinned = pinned
    for deployment in {s.deployment for s in sets}:
        last = [
            s
            for s in sets
            if s.deployment == deployment
            and not any(o.deployment == deployment and s.step in ancestors[o.step] for o in sets)
        ]
        end.counts[deployment] = max(s.replicas for s in last)
    return end


def _possible(
    deployment: str, at: _Set, sets: Sequence[_Set], ancestors: Mapping[str, frozenset[str]], start: _State
) -> list[int]:
    """The counts ``deployment`` may have while ``at`` runs: the last ones set before it (or the
    phase's start), and any set by a step that runs concurrently with it."""
    mine = [s for s in sets if s.deployment == deployment]
    before = [s for s in mine if s.step in ancestors[at.step]]
    concurrent = [s for s in mine if s.step not in ancestors[at.step] and at.step not in ancestors[s.step]]
    latest = [s for s in before if not any(s.step in ancestors[o.step] for o in before)]
    base = [s.replicas for s in latest] if latest else [start.counts.get(deployment, 0)]
    return base + [s.replicas for s in concurrent]


def _room(capacity: Capacity) -> str:
    return f"{capacity.pods} pods" + (f" ({capacity.why})" if capacity.why else "")


def _single(s: _Set, node: str | None, capacity: Capacity, backend: str) -> None:
    if node is not None and capacity.per_node is not None and s.replicas > capacity.per_node:
        raise ValidationError(
            f"{s.replicas} replicas of {s.deployment} on {node}, but a node of backend {backend!r} "
            f"has room for {capacity.per_node} pods",
            step=s.step,
        )
    if s.replicas > capacity.pods:
        raise ValidationError(
            f"{s.replicas} replicas of {s.deployment}, but backend {backend!r} has room for "
            f"{_room(capacity)}",
            step=s.step,
        )


def _together(
    s: _Set, at_once: Mapping[str, int], pinned: Mapping[str, str | None], capacity: Capacity, backend: str
) -> None:
    total = sum(at_once.values())
    if total > capacity.pods:
        each = ", ".join(f"{d} {n}" for d, n in sorted(at_once.items()) if n)
        raise ValidationError(
            f"{total} pods may run at once ({each}), but backend {backend!r} has room for {_room(capacity)}",
            step=s.step,
        )
    if capacity.per_node is None:
        return
    spread = math.ceil(sum(n for d, n in at_once.items() if pinned.get(d) is None) / capacity.nodes)
    for node in sorted({pinned[d] for d in at_once if pinned.get(d) is not None}, key=str):
        here = {d: n for d, n in at_once.items() if pinned.get(d) == node and n}
        load = sum(here.values()) + spread
        if load > capacity.per_node:
            each = ", ".join(f"{d} {n}" for d, n in sorted(here.items()))
            share = f" and {spread} of the unpinned pods" if spread else ""
            raise ValidationError(
                f"{load} pods may run at once on {node} ({each}{share}), but a node of backend "
                f"{backend!r} has room for {capacity.per_node}",
                step=s.step,
            )
