"""Experiments, from a file to a checked plan.

:mod:`~connreset.experiment.model` (experiments and phases), :mod:`~connreset.experiment.params`
(typed parameters), :mod:`~connreset.experiment.plan` (parameters applied, compiled),
:mod:`~connreset.experiment.loader` (experiment files), :mod:`~connreset.experiment.checks` and
:mod:`~connreset.experiment.capacity` (what a plan must pass on a testbed before anything runs).
"""

from connreset.experiment.model import Experiment, Phase, PlannedPhase

__all__ = ["Experiment", "Phase", "PlannedPhase"]
