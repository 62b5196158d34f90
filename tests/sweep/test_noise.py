"""The search on a noisy machine, on the test doubles: a metric compared with a baseline in
interleaved blocks, each block carrying a random ±30 % error. Whatever the noise does, a boundary
the sweep calls confirmed is the noiseless one, and a range contains it; hypothesis drives this
over many seeds (and the sweep's own search is hypothesis too, in its worker thread)."""

from __future__ import annotations

import asyncio
import random
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connreset import Call, Experiment, RunResult, StepContext
from connreset.sweep import Sweep, run_sweep
from connreset.sweep.verdict import Verdict, paired
from connreset.testing import testbed

SPACE = range(1, 33)  # ratios, as sweep_hash_ratio's
BLOCKS = 8
LIMIT = 0.10
SWITCH = 0.25

Noise = Literal["bursty", "independent", "none"]


def close(ratio: int, boundary: int) -> float:
    """The noiseless rate at ``ratio`` over the baseline's: within 10 % up to ``boundary``, and
    just past it beyond (the values either side of the boundary are the closest calls there are)."""
    return 1 - LIMIT * ratio / (boundary + 0.5)


def step(ratio: int, boundary: int) -> float:
    """A clear step: 3 % slower up to ``boundary``, 25 % beyond (as chains too long do)."""
    return 0.97 if ratio <= boundary else 0.75


def noisy_sweep(
    boundary: int, noise: Noise, rng: random.Random, repeats: int | None = None, truth: object = close
) -> Sweep:
    """Each trial measures A/B/A/B/.../A blocks of a rate. ``bursty``: the machine's load (a random
    factor in 0.7…1.3: a ±30 % error) changes at random moments, between any two blocks with
    probability ``SWITCH`` (bursts of 2-4 s against blocks of 0.75 s); ``independent``: every
    block its own ±30 %."""
    curve = truth if callable(truth) else close

    def experiment(*, ratio: int = 1) -> Experiment:
        async def measure(ctx: StepContext) -> None:
            load = rng.uniform(0.7, 1.3)
            a, b = [], []
            for i in range(2 * BLOCKS + 1):
                if noise == "independent" or (noise == "bursty" and rng.random() < SWITCH):
                    load = rng.uniform(0.7, 1.3)
                factor = load if noise != "none" else 1.0
                (a if i % 2 == 0 else b).append(1000 * factor * (1 if i % 2 == 0 else curve(ratio, boundary)))
            ctx.finding("a", a)
            ctx.finding("b", b)

        return Experiment.single("noisy", Call(measure))

    def holds(result: RunResult) -> Verdict:
        found = result.findings["main"]
        return paired(found["a"], found["b"], limit=LIMIT, name="rate")  # type: ignore[arg-type]

    return Sweep(
        name="noisy",
        experiment=experiment,
        vary="ratio",
        space=SPACE,
        holds=holds,
        holds_when="below",
        repeats=repeats,
    )


def check_honest(boundary: int, noise: Noise, seed: int, truth: object = close) -> str:
    """Run the sweep; every confirmed claim must be true. Returns the boundary's confidence."""
    spec = noisy_sweep(boundary, noise, random.Random(seed), truth=truth)
    result = asyncio.run(run_sweep(spec, testbed(), seed=seed, database=None))
    (found,) = result.boundaries
    true_last_failing = boundary + 1 if boundary < SPACE[-1] else None
    if found.first_holding is not None:
        assert found.first_holding <= boundary, found  # a value confirmed to hold does hold
    if found.last_failing is not None:
        assert found.last_failing > boundary, found  # a value confirmed to fail does fail
    if found.confidence == "confirmed":
        assert (found.last_failing, found.first_holding) == (true_last_failing, boundary)
        assert result.recommendation[0]["confidence"] == "confirmed"
        assert result.recommendation[0]["ratio"] == boundary
    else:
        assert result.recommendation[0]["ratio"] is None  # no recommendation, but what to rerun
        assert "rerun" in str(result.recommendation[0]["line"])
    return found.confidence


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    boundary=st.integers(1, 31),
    noise=st.sampled_from(["bursty", "independent"]),
    seed=st.integers(0, 2**32 - 1),
    truth=st.sampled_from([close, step]),
)
def test_with_a_random_30_percent_error_a_confirmed_boundary_is_the_noiseless_one(
    boundary: int, noise: Noise, seed: int, truth: object
) -> None:
    check_honest(boundary, noise, seed, truth)


def test_under_bursty_noise_the_pairs_still_confirm_most_clear_boundaries() -> None:
    """Not all inconclusive: pairing the blocks cancels the load they share."""
    confidences = [
        check_honest(boundary, "bursty", seed, step) for seed in range(10) for boundary in (3, 5, 12)
    ]
    assert confidences.count("confirmed") >= len(confidences) // 2, confidences


def test_without_noise_every_boundary_is_confirmed_exactly() -> None:
    for boundary in (1, 4, 5, 17, 31):
        assert check_honest(boundary, "none", 1) == "confirmed"


@pytest.mark.parametrize("repeats", [0, 1, 3])
def test_repeats_sets_the_runs_per_value(repeats: int) -> None:
    spec = noisy_sweep(5, "none", random.Random(1), repeats=repeats)
    result = asyncio.run(run_sweep(spec, testbed(), seed=1, database=None))
    per_value: dict[object, int] = {}
    for trial in result.trials:
        per_value[trial.params["ratio"]] = per_value.get(trial.params["ratio"], 0) + 1
    assert set(per_value.values()) == {1 + repeats}
    assert result.boundaries[0].first_holding == 5
