"""Composition of steps (``a >> b``, ``a | b``): it lives with the steps now, in
:mod:`connreset.steps.base`; this module keeps the old import path working."""

from connreset.steps.base import FlatStep, Graph, Par, Seq, flatten, parallel, sequence

__all__ = ["FlatStep", "Graph", "Par", "Seq", "flatten", "parallel", "sequence"]
