"""What a sweep file declares: the experiment, the parameter searched, the property, the metric."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs

from connreset.engine.results import RunResult
from connreset.experiment import Experiment
from connreset.experiment.plan import Plan, build

Workload = Mapping[str, object]


def _values(value: Sequence[int] | range) -> tuple[int, ...]:
    values = tuple(sorted(set(int(v) for v in value)))
    if len(values) < 2:
        raise ValueError("space needs at least two values")
    return values


def _workloads(value: Sequence[Workload]) -> tuple[Workload, ...]:
    out = tuple(dict(w) for w in value)
    if not out:
        raise ValueError("workloads needs at least one (use [{}] for the experiment's defaults)")
    return out


@attrs.frozen
class Trial:
    """One real run: the parameters it had, whether the property held, and the metric."""

    workload: Workload
    params: Mapping[str, object]
    holds: bool
    metric: float | None
    seconds: float
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "workload": dict(self.workload),
            "params": dict(self.params),
            "holds": self.holds,
            "metric": self.metric,
            "seconds": round(self.seconds, 3),
            "detail": self.detail,
        }


@attrs.frozen
class Confirmation:
    """A run after the search that checks a recommendation: ``params``, and whether the property
    should hold there (e.g. at the recommended size for longer than TIME_WAIT: it holds; at 80%
    of it: it fails)."""

    label: str
    params: Mapping[str, object]
    expect: bool


@attrs.frozen
class Sweep:
    """A search for where a property stops holding, one experiment run per trial.

    Args:
        name: names the results and the example database (``.connreset/sweeps/NAME``).
        experiment: an experiment function with typed keyword parameters.
        vary: the parameter searched, over ``space`` (a sorted set of integers).
        holds: the property, from a trial's result (e.g. "no drop was counted").
        holds_when: ``"above"`` if the property holds from some value up (a bigger table never
            hurts), ``"below"`` if it holds up to some value. The search relies on it: a trial
            answers for every value beyond it too, so each trial halves what is unknown.
        metric: a number to report per trial (e.g. the peak count).
        workloads: fixed parameters for each search; each gets its own boundary.
        repeats: runs per trial; the property must hold in every one (races cannot flip the
            verdict of a value between two visits, which hypothesis would call flaky).
        fixed: parameters set in every trial.
        recommend: from one workload's boundary (the last failing and first holding value, or
            None at the space's end) to the recommendation's fields.
    """

    name: str
    experiment: Callable[..., Experiment]
    vary: str
    space: tuple[int, ...] = attrs.field(converter=_values)
    holds: Callable[[RunResult], bool]
    holds_when: Literal["above", "below"] = "above"
    metric: Callable[[RunResult], float | None] | None = None
    metric_name: str = "metric"
    workloads: tuple[Workload, ...] = attrs.field(default=({},), converter=_workloads)
    repeats: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    fixed: Mapping[str, object] = attrs.field(factory=dict)
    recommend: Callable[[Workload, int | None, int | None], Mapping[str, object]] | None = None
    confirm: Callable[[Workload, Mapping[str, object]], Sequence[Confirmation]] | None = None
    description: str = ""

    @property
    def size(self) -> int:
        return len(self.space)

    def plan(self, params: Mapping[str, object]) -> Plan:
        """One trial's plan: the experiment with ``fixed`` and ``params`` (a workload's and the
        searched parameter's values)."""
        return build(self.experiment, {**self.fixed, **params})
