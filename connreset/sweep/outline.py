"""What a sweep will do, before it runs: how long at most, and how its time budget is shared.

The first line of a sweep's output and its dry run say it. With ``--time-budget S`` the sweep
ends within S seconds plus one run (see :mod:`connreset.sweep.budget`); the confirmation runs'
expected length is kept back from the search's share, or, when it would take more than half the
budget, the confirmations are skipped and the outline says what that costs.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from connreset.sweep.budget import declared_seconds
from connreset.sweep.search import _Knowledge, _positions
from connreset.sweep.spec import Confirmation, Sweep

#: A run's setup and undo beyond the waits it declares, until the search's runs have measured it
#: (measured here: 1-3 s for sweep_table_sizes' trials on the lab).
OVERHEAD_GUESS = 5.0


@attrs.frozen
class Outline:
    """``words``: how long the sweep takes at most, in words; ``search_seconds``: the search's
    share of the budget (None: no budget); ``confirm_seconds``: the confirmations' expected
    length; ``confirm_skipped``: why they will not run ("" if they will)."""

    words: str
    runs: int
    search_seconds: float | None
    confirm_seconds: float
    confirm_skipped: str = ""
    lines: tuple[str, ...] = ()


def provisional_confirmations(spec: Sweep) -> list[tuple[Mapping[str, object], Confirmation]]:
    """The confirmation runs a sweep would make if each boundary lay next to the safe end of the
    space: their number and length do not depend much on where it lies."""
    if spec.confirm is None:
        return []
    value_of = _positions(spec)
    out = []
    for workload in spec.workloads:
        safe, next_ = value_of(0), value_of(1)
        rec = dict(spec.recommend(workload, next_, safe)) if spec.recommend else {spec.vary: safe}
        out += [(workload, c) for c in spec.confirm(workload, rec)]
    return out


def outline(
    spec: Sweep, *, time_budget: float | None, max_trials: int | None, confirm: bool = True
) -> Outline:
    per_value = 1 + (2 if spec.repeats is None else spec.repeats)
    values = len(spec.workloads) * _Knowledge(spec.size).left()
    runs = values * per_value
    if max_trials is not None:
        runs = min(runs, max_trials)
    checks = provisional_confirmations(spec) if confirm else []
    confirm_seconds = sum(declared_seconds(spec.plan({**w, **c.params})) + OVERHEAD_GUESS for w, c in checks)
    skipped = ""
    search_seconds: float | None = None
    if time_budget is not None:
        search_seconds = time_budget
        if checks and confirm_seconds > time_budget / 2:
            skipped = (
                f"the {len(checks)} confirmation run(s) need about {confirm_seconds:.0f} s, more than "
                f"half the {time_budget:g} s budget: skipped, so the recommendation is not confirmed by "
                f"a long run (a budget of {2 * confirm_seconds:.0f} s or more runs them)"
            )
        elif checks:
            search_seconds = time_budget - confirm_seconds
        kept = f": {confirm_seconds:.0f} s kept for {len(checks)} confirmation run(s)"
        kept = kept if checks and not skipped else ""
        run = max(
            declared_seconds(spec.plan({**w, spec.vary: v})) for w in spec.workloads for v in spec.space[:1]
        )
        one = f" (one run: {run + OVERHEAD_GUESS:.0f} s or so)" if run else ""
        words = f"at most {time_budget:g} s plus one run{one} (--time-budget, confirmations included{kept})"
    else:
        words = (
            f"at most {runs + len(checks)} run(s) if no value is inconclusive "
            f"({values} value(s), up to {per_value} run(s) each"
            + (f", and {len(checks)} confirmation run(s)" if checks else "")
            + "); no time bound: give --time-budget S for one"
        )
    lines = [f"the sweep takes {words}"]
    if skipped:
        lines.append(f"cut: {skipped}")
    return Outline(words, runs, search_seconds, confirm_seconds, skipped, tuple(lines))


def sweep_dry_run(spec: Sweep, planned: Outline, testbed: str, out: object) -> list[str]:
    """What ``connreset sweep --dry-run`` prints: the search, its confirmations, how long at most."""
    repeats = (
        "1, or 2 for a close call (from each value's first run)" if spec.repeats is None else spec.repeats
    )
    lines = [
        f"sweep {spec.name}: {planned.lines[0]}",
        *planned.lines[1:],
        f"searches {spec.vary} over {spec.space[0]}…{spec.space[-1]} ({spec.size} values), the property "
        f"holding {spec.holds_when} a boundary, on {testbed}",
        f"each value's verdict is confirmed by {repeats} before the search relies on it",
    ]
    for workload in spec.workloads:
        words = ", ".join(f"{k}={v}" for k, v in workload.items()) or "the defaults"
        lines.append(
            f"  workload {words}: at most {_Knowledge(spec.size).left()} values if none is inconclusive"
        )
    if planned.search_seconds is not None:
        lines.append(f"the search's share of the budget: {planned.search_seconds:.0f} s")
    if planned.confirm_seconds and not planned.confirm_skipped:
        lines.append(f"confirmation runs: about {planned.confirm_seconds:.0f} s")
    lines.append(f"results: {out}")
    lines.append("(a dry run opens nothing and runs nothing)")
    return lines
