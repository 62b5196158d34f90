"""A trial's verdict with its doubt: holds, fails, or inconclusive, and the noise it was judged in.

A sweep's ``holds`` may return a plain ``bool`` (a counter: "no drop was counted") or a
:class:`Verdict`. A metric compared with a baseline is measured in interleaved blocks, baseline and
treated in turn (A/B/A/B), so that both sides see the same machine; :func:`paired` judges the
paired ratios: a trial holds only when every pair is within the threshold and the pairs agree to
within it, fails only when every pair is past it, and is otherwise inconclusive, which the search
treats as "don't know", never as "fails".
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

    ``baseline[i]`` was measured just before ``treated[i]`` (A/B/A/B...); a baseline block after
    the last treated one (A/B/A/B/A) is allowed. Each treated block is divided by the mean of the
    baseline blocks either side of it: those ratios are the paired measurements. The verdict:

    - holds if every ratio is within the limit and they agree to within it (their range is less
      than twice the limit);
    - fails if every ratio is past the limit;
    - inconclusive otherwise: the pairs straddle the threshold, or disagree by more than it.

    ``effect`` is the median ratio − 1, ``spread`` half the ratios' range, ``noise`` the
    baseline blocks' range over their mean (how much the machine moved during the trial).
    """
    if not 0 < limit < 1:
        raise ValueError("limit is a fraction between 0 and 1")
    pairs = len(treated)
    if pairs < 2 or len(baseline) not in (pairs, pairs + 1):
        raise ValueError("paired needs two treated blocks or more, each after a baseline block")
    base_mean = statistics.fmean(baseline)
    noise = (max(baseline) - min(baseline)) / base_mean if base_mean > 0 else math.inf
    ratios = []
    for i, value in enumerate(treated):
        around = baseline[i : i + 2]
        ref = statistics.fmean(around)
        if ref <= 0:
            return Verdict(None, noise, None, None, None, f"{name}: a baseline block measured nothing")
        ratios.append(value / ref)
    spread = (max(ratios) - min(ratios)) / 2
    effect = statistics.median(ratios) - 1

    def clear(ratio: float) -> float:  # how far inside the limit, negative past it
        return (ratio - 1 + limit) if worse == "lower" else (limit - ratio + 1)

    inside = [clear(r) for r in ratios]
    margin = clear(effect + 1) / spread if spread > 0 else math.copysign(math.inf, clear(effect + 1))
    sign = "+" if effect >= 0 else "−"
    said = f"{name} {sign}{abs(effect):.1%} ±{spread:.1%} (baseline noise {noise:.0%})"
    if all(c < 0 for c in inside):
        return Verdict(False, noise, spread, effect, margin, f"{said}: every pair past the {limit:.0%} limit")
    if spread >= limit:
        return Verdict(None, noise, spread, effect, margin, f"{said}: too noisy for a {limit:.0%} limit")
    if all(c > 0 for c in inside):
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
