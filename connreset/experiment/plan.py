"""A plan: an experiment with its parameters applied, compiled and ready for the engine."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from connreset.errors import ValidationError
from connreset.experiment import Experiment, PlannedPhase
from connreset.experiment.params import Param, params_of, refused, resolve


@attrs.frozen
class Plan:
    """An experiment, the parameters it declares, the values used, and its compiled phases.

    ``cluster_options`` are an experiment file's defaults per cluster backend name (e.g.
    ``{"lab": {"time_scale": 0.1}}``); options given on the command line override them.
    """

    experiment: Experiment
    declared: Mapping[str, Param]
    params: Mapping[str, object]
    source: str
    phases: tuple[PlannedPhase, ...]
    build: Callable[..., Experiment] | None = None
    cluster_options: Mapping[str, Mapping[str, object]] = attrs.field(factory=dict)

    @property
    def read_only(self) -> bool:
        """No step is mutating: the engine then refuses every change (undo record) and arms no
        watchdog, so a run of this plan leaves nothing on any node."""
        return not any(flat.step.mutating for phase in self.phases for flat in phase.steps)

    def options_for(self, cluster: str) -> dict[str, str]:
        """The file's default options for one cluster backend, as strings."""
        return {k: str(v) for k, v in (self.cluster_options.get(cluster) or {}).items()}


Target = Experiment | Callable[..., Experiment] | Plan


def build(
    target: Target,
    params: Mapping[str, object] | None = None,
    raw: Mapping[str, str] | None = None,
    *,
    source: str = "<experiment>",
) -> Plan:
    """Apply parameters to an Experiment or an experiment function, and compile it."""
    if isinstance(target, Plan):
        if params or raw:
            raise ValidationError("a Plan has its parameters already; build it again to change them")
        return target
    fn: Callable[..., Experiment] | None
    if isinstance(target, Experiment):
        declared: dict[str, Param] = {}
        values = resolve(declared, params, raw)
        experiment, fn = target, None
    elif callable(target):
        declared = params_of(target)
        values = resolve(declared, params, raw)
        try:
            made: Any = target(**values)
        except (ValueError, ValidationError) as exc:
            if not (params or raw):
                raise
            raise refused(exc, params, raw) from None  # naming the values the user gave
        if not isinstance(made, Experiment):
            raise ValidationError(f"experiment function returned {type(made).__name__}")
        experiment, fn = made, target
    else:
        raise ValidationError("`experiment` must be an Experiment or a function returning one")
    return Plan(experiment, declared, values, source, experiment.compile(), fn)
