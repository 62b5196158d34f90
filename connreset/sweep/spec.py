"""What a sweep file declares: the experiment, the parameter searched, the property, the metric."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs

from connreset.engine.results import RunResult
from connreset.experiment import Experiment
from connreset.experiment.plan import Plan, build
from connreset.sweep.verdict import Verdict

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
    """One real run: the parameters it had, its verdict (``holds``: True, False, or None when the
    run could not tell), and the metric.

    ``run`` is 0 for a value's first run and 1, 2... for the runs that confirm it; ``noise`` the
    relative spread of the run's baseline blocks, ``spread`` that of its paired measurements
    (None for a verdict without a baseline); ``why`` the verdict in words.
    """

    workload: Workload
    params: Mapping[str, object]
    holds: bool | None
    metric: float | None
    seconds: float
    detail: str = ""
    run: int = 0
    noise: float | None = None
    spread: float | None = None
    why: str = ""

    @property
    def word(self) -> str:
        return {True: "holds", False: "fails", None: "inconclusive"}[self.holds]

    def to_json(self) -> dict[str, Any]:
        return {
            "workload": dict(self.workload),
            "params": dict(self.params),
            "holds": self.holds,
            "verdict": self.word,
            "run": self.run,
            "metric": self.metric,
            "noise": None if self.noise is None else round(self.noise, 4),
            "spread": None if self.spread is None else round(self.spread, 4),
            "why": self.why,
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
        holds: the property, from a trial's result (e.g. "no drop was counted"): a bool, or a
            :class:`~connreset.sweep.verdict.Verdict` that may say "inconclusive" (a metric
            compared with a baseline: :func:`~connreset.sweep.verdict.paired`).
        holds_when: ``"above"`` if the property holds from some value up (a bigger table never
            hurts), ``"below"`` if it holds up to some value. The search relies on it: a trial
            answers for every value beyond it too, so each trial halves what is unknown.
        metric: a number to report per trial (e.g. the peak count).
        workloads: fixed parameters for each search; each gets its own boundary.
        repeats: how many more runs confirm a value's verdict before the search relies on it
            (every one must agree, or the value is inconclusive). None: chosen from the first
            run's measurement, 1, or 2 when its effect lies within two spreads of the threshold.
        fixed: parameters set in every trial.
        recommend: from one workload's boundary (the last failing and first holding value, or
            None at the space's end) to the recommendation's fields.
    """

    name: str
    experiment: Callable[..., Experiment]
    vary: str
    space: tuple[int, ...] = attrs.field(converter=_values)
    holds: Callable[[RunResult], bool | Verdict]
    holds_when: Literal["above", "below"] = "above"
    metric: Callable[[RunResult], float | None] | None = None
    metric_name: str = "metric"
    workloads: tuple[Workload, ...] = attrs.field(default=({},), converter=_workloads)
    repeats: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.ge(0))
    )
    fixed: Mapping[str, object] = attrs.field(factory=dict)
    recommend: Callable[[Workload, int | None, int | None], Mapping[str, object]] | None = None
    confirm: Callable[[Workload, Mapping[str, object]], Sequence[Confirmation]] | None = None
    description: str = ""

    def with_repeats(self, repeats: int | None) -> Sweep:
        return attrs.evolve(self, repeats=repeats)

    @property
    def size(self) -> int:
        return len(self.space)

    def plan(self, params: Mapping[str, object]) -> Plan:
        """One trial's plan: the experiment with ``fixed`` and ``params`` (a workload's and the
        searched parameter's values)."""
        return build(self.experiment, {**self.fixed, **params})
