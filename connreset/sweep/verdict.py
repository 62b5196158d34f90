"""A trial's verdict with its doubt: holds, fails, or inconclusive, and the noise it was judged in.

A sweep's ``holds`` may return a plain ``bool`` (a counter: "no drop was counted") or a
:class:`Verdict`. A metric compared with a baseline is measured in interleaved blocks, baseline and
treated in turn (A/B/A/B/.../A), so that both sides see the same machine; :func:`paired` judges
the paired ratios: a trial holds only when every undisturbed pair is within the threshold and the
pairs agree to within it, fails only when every one is past it, and is otherwise inconclusive,
which the search treats as "don't know", never as "fails".
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Literal

import attrs


@attrs.frozen
class Verdict:
    """One trial's verdict.

    ``holds`` is None when the trial cannot tell (``why`` says why). ``noise`` is the relative
    spread of the baseline blocks (how much the machine moved during the trial); ``spread`` the
    half-range of the paired ratios the verdict was judged on; ``effect`` the paired change
    (e.g. -0.07: 7 % slower than the baseline); ``margin`` how far the effect lies from the
    threshold, in units of ``spread`` (None: no noise was measured).
    """

    holds: bool | None
    noise: float | None = None
    spread: float | None = None
    effect: float | None = None
    margin: float | None = None
    why: str = ""

    @property
    def conclusive(self) -> bool:
        return self.holds is not None

    @property
    def word(self) -> str:
        return {True: "holds", False: "fails", None: "inconclusive"}[self.holds]


def as_verdict(value: object) -> Verdict:
    """A ``holds`` callable's answer as a :class:`Verdict` (a bool is a noiseless verdict)."""
    if isinstance(value, Verdict):
        return value
    if isinstance(value, bool):
        return Verdict(value)
    raise TypeError(f"holds() returned {type(value).__name__}: a bool or a Verdict")


def paired(
    baseline: Sequence[float],
    treated: Sequence[float],
    *,
    limit: float,
    worse: Literal["lower", "higher"] = "lower",
    name: str = "metric",
) -> Verdict:
    """Judge interleaved blocks: does ``treated`` stay within ``limit`` (a fraction, 0.10 = 10 %)
    of ``baseline``, in the direction ``worse``?

    The blocks were measured A/B/A/B/.../A: ``baseline[i]`` just before ``treated[i]`` and
    ``baseline[i + 1]`` just after it. Each treated block is divided by the mean of the two
    baseline blocks either side of it: those ratios are the paired measurements. A pair whose two
    baseline blocks differ by more than half the limit is *disturbed* (the machine's load changed
    around it) and is left out. The verdict, on the undisturbed pairs:

    - inconclusive if fewer than half of them (and at least three) are left: the load moved
      around most pairs;
    - holds if every ratio is within the limit by more than the ``spread`` (half their range),
      and the spread is less than the limit;
    - fails if every ratio is past the limit by more than the spread;
    - inconclusive otherwise: the pairs straddle the threshold, or lie too close to it for how
      much they disagree.

    ``effect`` is the median ratio − 1; ``noise`` the baseline blocks' range over their mean (how
    much the machine moved during the trial).
    """
    if not 0 < limit < 1:
        raise ValueError("limit is a fraction between 0 and 1")
    pairs = len(treated)
    if pairs < 3 or len(baseline) != pairs + 1:
        raise ValueError("paired needs A/B/.../A blocks: three treated blocks or more, and one more baseline")
    base_mean = statistics.fmean(baseline)
    noise = (max(baseline) - min(baseline)) / base_mean if base_mean > 0 else math.inf
    ratios = []
    disturbed = 0
    for i, value in enumerate(treated):
        before, after = baseline[i], baseline[i + 1]
        ref = (before + after) / 2
        if ref <= 0 or min(before, after) <= 0:
            return Verdict(None, noise, None, None, None, f"{name}: a baseline block measured nothing")
        if abs(after - before) / ref > limit / 2:
            disturbed += 1
            continue
        ratios.append(value / ref)
    if len(ratios) < max(3, (pairs + 1) // 2):
        return Verdict(
            None,
            noise,
            None,
            None,
            None,
            f"{name}: the machine's load moved around {disturbed} of {pairs} pairs "
            f"(baseline noise {noise:.0%}): too noisy for a {limit:.0%} limit",
        )
    spread = (max(ratios) - min(ratios)) / 2
    effect = statistics.median(ratios) - 1

    def clear(ratio: float) -> float:  # how far inside the limit, negative past it
        return (ratio - 1 + limit) if worse == "lower" else (limit - ratio + 1)

    inside = [clear(r) for r in ratios]
    margin = clear(effect + 1) / spread if spread > 0 else math.copysign(math.inf, clear(effect + 1))
    sign = "+" if effect >= 0 else "−"
    left_out = f", {disturbed} disturbed pair(s) left out" if disturbed else ""
    said = f"{name} {sign}{abs(effect):.1%} ±{spread:.1%} (baseline noise {noise:.0%}{left_out})"
    if all(c < -spread for c in inside):
        return Verdict(False, noise, spread, effect, margin, f"{said}: every pair past the {limit:.0%} limit")
    if spread >= limit:
        return Verdict(None, noise, spread, effect, margin, f"{said}: too noisy for a {limit:.0%} limit")
    if all(c > spread for c in inside):
        return Verdict(True, noise, spread, effect, margin, said)
    return Verdict(None, noise, spread, effect, margin, f"{said}: the pairs straddle the {limit:.0%} limit")


def combine(*verdicts: Verdict) -> Verdict:
    """Several criteria of one trial: fails if any fails for sure, holds if all hold, else
    inconclusive. The noise reported is the widest."""
    noises = [v.noise for v in verdicts if v.noise is not None]
    spreads = [v.spread for v in verdicts if v.spread is not None]
    margins = [v.margin for v in verdicts if v.margin is not None]
    failing = [v for v in verdicts if v.holds is False]
    unsure = [v for v in verdicts if v.holds is None]
    holds = False if failing else (None if unsure else True)
    why = "; ".join(v.why for v in (failing or unsure or list(verdicts)) if v.why)
    return Verdict(
        holds,
        max(noises) if noises else None,
        max(spreads) if spreads else None,
        verdicts[0].effect if verdicts else None,
        min(margins) if margins else None,
        why,
    )
