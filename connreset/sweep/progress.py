"""A sweep's progress for people: :class:`~connreset.events.SweepProgress` events, in words."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from connreset import events as ev
from connreset.sweep.search import Boundary, Standing
from connreset.sweep.spec import Sweep, Trial


def from_standing(spec: Sweep, standing: Standing) -> ev.SweepProgress:
    """Where the search stands, as an event: trials done, at most how many in all, the trial
    beginning now, each boundary so far, and how the last trial came out."""
    done = len(standing.trials)
    return ev.SweepProgress(
        done,
        done + standing.left,
        dict(standing.now),
        boundary_words(spec, standing.boundaries),
        trial_words(spec, standing.trials[-1]) if standing.trials else "",
    )


def trial_words(spec: Sweep, trial: Trial) -> str:
    """``pods=50, max=600: fails, peak 3138 [11.2s]``; a confirming run says which it is, an
    inconclusive one why, and a run with a baseline its noise."""
    metric = f", {spec.metric_name} {trial.metric:g}" if trial.metric is not None else ""
    run = f" (confirming run {trial.run})" if trial.run else ""
    noise = f", noise {trial.noise:.0%}" if trial.noise is not None else ""
    why = f" ({trial.why})" if trial.holds is None and trial.why else ""
    words = params_words({**trial.workload, **trial.params})
    return f"{words}: {trial.word}{run}{why}{metric}{noise} [{trial.seconds:.1f}s]"


def boundary_words(spec: Sweep, boundaries: Sequence[Boundary]) -> str:
    """Each searched workload's boundary so far (``pods=50: max 600 fails, 1200 holds``), joined
    by ``; ``; empty while no trial has said anything."""
    parts = []
    for b in boundaries:
        found = _found(spec, b)
        if found:
            named = len(spec.workloads) > 1 or bool(b.workload)
            parts.append(f"{params_words(b.workload)}: {found}" if named else found)
    return "; ".join(parts)


def _found(spec: Sweep, b: Boundary) -> str:
    fails = b.last_failing is not None
    holds = b.first_holding is not None
    if b.complete and not fails and holds:
        return f"{spec.vary} holds at every value"
    if b.complete and fails and not holds:
        return f"{spec.vary} fails at every value"
    said = [
        f"{v} {word}" for v, word in ((b.last_failing, "fails"), (b.first_holding, "holds")) if v is not None
    ]
    if not said:
        return ""
    between = "" if b.complete or not (fails and holds) else " (searching between)"
    if b.complete and b.confidence != "confirmed":
        unsure = f": inconclusive at {', '.join(map(str, b.inconclusive))}" if b.inconclusive else ""
        between = f" ({b.confidence}{unsure})"
    return f"{spec.vary} {', '.join(said)}{between}"


def params_words(params: Mapping[str, object]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())
