"""Paired verdicts: a metric against its baseline, measured A/B/.../A; and how the search treats a
value that cannot be confirmed."""

from __future__ import annotations

from pathlib import Path

import pytest

from connreset import Call, Experiment, RunResult, StepContext
from connreset.sweep import Sweep, run_sweep
from connreset.sweep.verdict import Verdict, as_verdict, combine, paired
from connreset.testing import testbed

STEADY = [100.0] * 9


def test_a_clear_drop_fails_and_a_small_one_holds() -> None:
    assert paired(STEADY, [70, 71, 69, 70, 72, 70, 69, 71], limit=0.10).holds is False
    held = paired(STEADY, [97, 98, 97, 96, 98, 97, 97, 98], limit=0.10)
    assert held.holds is True and held.effect == pytest.approx(-0.03) and held.noise == 0


def test_pairs_close_to_the_limit_or_straddling_it_are_inconclusive() -> None:
    verdict = paired(STEADY, [92, 89, 91, 88, 93, 90, 89, 91], limit=0.10)
    assert verdict.holds is None and "straddle" in verdict.why


def test_the_machines_load_moving_around_most_pairs_is_inconclusive_not_a_failure() -> None:
    """The issue's case: a baseline that moved by 40 % during the trial says nothing."""
    baseline = [100, 60, 100, 60, 100, 60, 100, 60, 100]
    verdict = paired(baseline, [62, 61, 63, 60, 59, 62, 61, 60], limit=0.10)
    assert verdict.holds is None and "moved around 8 of 8 pairs" in verdict.why
    assert verdict.noise == pytest.approx(40 / (sum(baseline) / 9))


def test_disturbed_pairs_are_left_out_and_said() -> None:
    baseline = [100, 100, 100, 100, 100, 130, 130, 130, 130]  # the load changed once
    verdict = paired(baseline, [97, 97, 97, 97, 126, 126, 126, 126], limit=0.10)
    assert verdict.holds is True and "1 disturbed pair(s) left out" in verdict.why


def test_higher_is_worse_for_a_latency() -> None:
    assert paired(STEADY, [150] * 8, limit=0.25, worse="higher").holds is False
    assert paired(STEADY, [105] * 8, limit=0.25, worse="higher").holds is True


def test_blocks_must_be_interleaved_a_b_a() -> None:
    with pytest.raises(ValueError, match=r"A/B/\.\.\./A"):
        paired([1.0, 1.0, 1.0], [1.0, 1.0, 1.0], limit=0.1)


def test_combine_and_as_verdict() -> None:
    assert combine(Verdict(True), Verdict(None, why="noisy")).holds is None
    assert combine(Verdict(True), Verdict(False, why="chains")).why == "chains"
    assert as_verdict(True) == Verdict(True)
    with pytest.raises(TypeError):
        as_verdict("yes")


def scripted(boundary: int, answers: dict[int, list[bool | None]]) -> Sweep:
    """Holds up to ``boundary`` (ratio-like: holds below), except values in ``answers``, whose
    runs answer in turn from their list."""
    said: dict[int, int] = {}

    def experiment(*, ratio: int = 1) -> Experiment:
        async def verdict(ctx: StepContext) -> None:
            if ratio in answers:
                n = said.get(ratio, 0)
                said[ratio] = n + 1
                ctx.finding("holds", answers[ratio][min(n, len(answers[ratio]) - 1)])
            else:
                ctx.finding("holds", ratio <= boundary)

        return Experiment.single("scripted", Call(verdict))

    def holds(result: RunResult) -> Verdict:
        value = result.findings["main"]["holds"]
        return Verdict(value if isinstance(value, bool) else None, why="" if value is not None else "noisy")

    return Sweep(
        name="scripted",
        experiment=experiment,
        vary="ratio",
        space=range(1, 33),
        holds=holds,
        holds_when="below",
        repeats=1,
    )


async def test_inconclusive_values_next_to_the_boundary_make_it_a_range_with_no_recommendation() -> None:
    result = await run_sweep(scripted(5, {6: [None], 7: [None]}), testbed(), seed=1, database=None)
    (found,) = result.boundaries
    assert (found.first_holding, found.last_failing, found.confidence) == (5, 8, "range")
    assert found.inconclusive == (6, 7) and found.complete
    (rec,) = result.recommendation
    assert rec["confidence"] == "range" and rec["ratio"] is None
    assert rec["line"] == (
        "the defaults: no recommendation, the boundary is range (ratio 8 fails, 5 holds, inconclusive "
        "at 6, 7): rerun on a quieter machine (2 run(s) too noisy)"
    )


async def test_runs_that_disagree_make_a_value_inconclusive_and_the_search_works_around_it() -> None:
    # ratio 16 (the first halving) says fails, then holds: it is not trusted either way
    result = await run_sweep(scripted(5, {16: [False, True]}), testbed(), seed=1, database=None)
    (found,) = result.boundaries
    assert found.inconclusive == (16,)
    assert [t.holds for t in result.trials if t.params["ratio"] == 16] == [False, True]
    assert (found.first_holding, found.last_failing, found.confidence) == (5, 6, "confirmed")
    assert result.recommendation[0]["ratio"] == 5


async def test_an_unsafe_end_that_cannot_tell_leaves_the_boundary_inconclusive_if_nothing_fails() -> None:
    answers: dict[int, list[bool | None]] = {r: [None] for r in range(6, 33)}
    result = await run_sweep(scripted(5, answers), testbed(), seed=1, database=None)
    (found,) = result.boundaries
    assert found.confidence == "inconclusive" and found.last_failing is None
    assert found.first_holding == 5  # what was confirmed stands
    assert "no value was confirmed to fail" in found.why
    assert result.recommendation[0]["ratio"] is None


async def test_hypothesis_database_keeps_only_confirmed_failures(tmp_path: Path) -> None:
    """Inconclusive values are invalid examples to hypothesis: a rerun replays the confirmed
    failure first, never an inconclusive value."""
    first = await run_sweep(scripted(5, {6: [None], 7: [None]}), testbed(), database=tmp_path)
    (found,) = first.boundaries
    assert found.minimal_failing == found.last_failing == 8
    again = await run_sweep(scripted(5, {6: [None], 7: [None]}), testbed(), database=tmp_path)
    assert again.trials[0].params == {"ratio": 8} and again.trials[0].holds is False
