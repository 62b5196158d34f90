"""Composition of steps: ``a >> b`` runs in order, ``a | b`` runs concurrently.

Composites are plain frozen data. They are flattened into a DAG by :func:`flatten`, which gives
every step a unique name and the set of steps it waits for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

import attrs

if TYPE_CHECKING:
    from connreset.steps.base import Step

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
