"""The sweep's search on the test doubles: each trial a run of an experiment whose property holds
from a boundary up. Cheap trials, so the search can be compared with every value of the space."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from connreset import Call, Experiment, RunResult, StepContext
from connreset.sweep import Sweep, TrialError, run_sweep
from connreset.testing import testbed

SPACE = range(256, 256 + 64 * 64, 64)  # 64 values


def make(boundary: int, **extra: object) -> Sweep:
    def experiment(*, max_: int = 256, pods: int = 1) -> Experiment:
        async def verdict(ctx: StepContext) -> None:
            ctx.finding("fits", max_ >= boundary * pods)
            ctx.finding("peak", boundary * pods)

        return Experiment.single("fits", Call(verdict))

    def holds(result: RunResult) -> bool:
        return result.findings["main"]["fits"] is True

    options: dict[str, object] = {
        "name": "fits",
        "experiment": experiment,
        "vary": "max_",
        "space": SPACE,
        "holds": holds,
        "metric": lambda r: float(r.findings["main"]["peak"]),  # type: ignore[arg-type]
    }
    return Sweep(**{**options, **extra})  # type: ignore[arg-type]


def grid(spec: Sweep, boundary: int) -> tuple[int | None, int | None]:
    """The exhaustive answer: every value's verdict, and where it changes."""
    verdicts = {v: v >= boundary for v in spec.space}
    failing = [v for v, ok in verdicts.items() if not ok]
    holding = [v for v, ok in verdicts.items() if ok]
    return (max(failing) if failing else None), (min(holding) if holding else None)


@pytest.mark.parametrize("boundary", [300, 1000, 2200, 4000])
async def test_the_boundary_matches_the_exhaustive_grid_with_a_quarter_of_its_trials(boundary: int) -> None:
    spec = make(boundary)
    result = await run_sweep(spec, testbed(), seed=1, database=None)
    (found,) = result.boundaries
    assert (found.last_failing, found.first_holding) == grid(spec, boundary)
    assert found.complete
    assert len(result.trials) <= len(spec.space) // 4


async def test_a_violated_property_is_found_and_shrunk_to_the_boundary() -> None:
    result = await run_sweep(make(2200), testbed(), seed=3, database=None)
    (found,) = result.boundaries
    assert found.minimal_failing == found.last_failing == 2176  # the largest failing value, not 256


@pytest.mark.parametrize(("boundary", "last", "first"), [(100, None, 256), (10_000, 4288, None)])
async def test_a_space_that_never_fails_or_always_fails_takes_two_values_each_confirmed(
    boundary: int, last: int | None, first: int | None
) -> None:
    result = await run_sweep(make(boundary), testbed(), database=None)
    (found,) = result.boundaries
    assert (found.last_failing, found.first_holding) == (last, first)
    assert len(result.trials) <= 2 * 2  # at most both ends, each confirmed once
    assert found.confidence == "confirmed"


async def test_the_same_seed_gives_the_same_trials() -> None:
    runs = []
    for _ in range(2):
        result = await run_sweep(make(1000), testbed(), seed=7, database=None)
        runs.append([t.params for t in result.trials])
    assert runs[0] == runs[1] and len(runs[0]) > 2


async def test_the_database_replays_the_failure_first_on_a_rerun(tmp_path: Path) -> None:
    first = await run_sweep(make(2200), testbed(), database=tmp_path)  # no seed: a seeded search
    again = await run_sweep(make(2200), testbed(), database=tmp_path)  # keeps no database
    (found,) = first.boundaries
    assert again.trials[0].params == {"max_": found.last_failing}
    assert again.trials[0].holds is False


async def test_each_workload_gets_its_own_boundary_and_recommendation(tmp_path: Path) -> None:
    spec = make(500, workloads=[{"pods": 1}, {"pods": 4}])
    result = await run_sweep(spec, testbed(), seed=1, database=None, out=tmp_path)
    assert [(b.workload, b.first_holding) for b in result.boundaries] == [
        ({"pods": 1}, 512),
        ({"pods": 4}, 2048),
    ]
    assert result.lines == ["pods=1: max_ ≥ 512", "pods=4: max_ ≥ 2048"]
    doc = json.loads((tmp_path / "results.json").read_text())
    assert set(doc) == {"schema", "sweep", "description", "vary", "space", "holds_when", "metric",
                        "settings", "trials", "boundaries", "recommendation", "confirmation",
                        "interrupted", "cut"}  # fmt: skip
    assert doc["interrupted"] is False
    assert doc["space"] == {"min": 256, "max": 4288, "values": 64}
    assert set(doc["trials"][0]) == {
        "workload", "params", "holds", "verdict", "run", "metric", "noise", "spread", "why",
        "seconds", "detail",
    }  # fmt: skip
    assert doc["boundaries"][1]["first_holding"] == 2048 and doc["recommendation"][1]["max_"] == 2048
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (tmp_path / "plot.svg").read_text()
    assert sorted(p.name for p in (tmp_path / "journals").iterdir())[0] == "trial-0001.json"


async def test_a_property_that_holds_below_a_boundary() -> None:
    """Like a forged packet's offset: harmless up to some value, a reset beyond it."""

    def experiment(*, offset: int = 0) -> Experiment:
        async def verdict(ctx: StepContext) -> None:
            ctx.finding("reset", offset >= 131_072)

        return Experiment.single("boom", Call(verdict))

    below = Sweep(
        name="offsets",
        experiment=experiment,
        vary="offset",
        space=range(0, 262_144 + 1, 4096),
        holds=lambda r: r.findings["main"]["reset"] is False,
        holds_when="below",
    )
    result = await run_sweep(below, testbed(), seed=1, database=None)
    (found,) = result.boundaries
    assert (found.first_holding, found.last_failing) == (126_976, 131_072)
    assert len(result.trials) <= 65 // 4


async def test_a_trial_in_error_stops_the_sweep_at_once() -> None:
    """An error says nothing about the property: no shrinking of it, no more trials."""

    def experiment(*, max_: int = 0) -> Experiment:
        async def boom(ctx: StepContext) -> None:
            if max_ < 2000:
                raise RuntimeError("the testbed broke")

        return Experiment.single("broken", Call(boom))

    spec = Sweep(name="broken", experiment=experiment, vary="max_", space=SPACE, holds=lambda r: True)
    with pytest.raises(TrialError, match=r"max_=256 .*the testbed broke"):
        await run_sweep(spec, testbed(), database=None)


async def test_the_database_keeps_each_workloads_failures_apart(tmp_path: Path) -> None:
    spec = make(500, workloads=[{"pods": 1}, {"pods": 4}])
    await run_sweep(spec, testbed(), database=tmp_path)
    again = await run_sweep(spec, testbed(), database=tmp_path)
    firsts = {}
    for trial in again.trials:
        firsts.setdefault(trial.workload["pods"], trial.params["max_"])
    assert firsts == {1: 448, 4: 1984}  # each workload's own last failing value, replayed first


async def test_a_changed_space_does_not_replay_positions_of_the_old_one(tmp_path: Path) -> None:
    await run_sweep(make(2200), testbed(), database=tmp_path)
    wider = attrs.evolve(make(2200), space=tuple(range(256, 256 + 128 * 64, 128)))
    again = await run_sweep(wider, testbed(), database=tmp_path)
    # the ends and a bisection, each value confirmed once: no replays of stale positions
    assert len(again.trials) <= 2 * (2 + 6)
