"""The time budget bounds the whole sweep, confirmations included, on the test doubles: trials that
wait, so the budget runs out in the middle of the search or before the confirmations."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from connreset import Call, Experiment, StepContext, Wait, cli
from connreset.sweep import Confirmation, Sweep, run_sweep
from connreset.sweep.outline import outline
from connreset.testing import testbed
from tests.sweep.test_search import SPACE

RUN = 0.2  # s a trial waits


def slow(*, confirm_window: float | None = None) -> Sweep:
    """Fits from 1000 up; each trial waits RUN s; the confirmation (if any) waits ``confirm_window``."""

    def experiment(*, max_: int = 256, wait: float = RUN) -> Experiment:
        async def verdict(ctx: StepContext) -> None:
            ctx.finding("fits", max_ >= 1000)

        return Experiment.single("slow", Wait(seconds=wait) >> Call(verdict, name="verdict"))

    def confirm(workload: object, rec: object) -> list[Confirmation]:
        assert confirm_window is not None
        return [Confirmation("long run", {"max_": 1024, "wait": confirm_window}, True)]

    return Sweep(
        name="slow",
        experiment=experiment,
        vary="max_",
        space=SPACE,
        holds=lambda r: r.findings["main"]["fits"] is True,
        confirm=confirm if confirm_window is not None else None,
    )


async def test_a_budget_that_runs_out_mid_search_cuts_it_cleanly_within_one_run(tmp_path: Path) -> None:
    budget = 1.0  # about 4 of the 16 runs the search needs
    t0 = time.monotonic()
    result = await run_sweep(slow(), testbed(), seed=1, database=None, time_budget=budget)
    took = time.monotonic() - t0
    longest = max(t.seconds for t in result.trials)
    assert took <= budget + longest  # never later than the budget by more than one run
    # what was found is written (the plot takes a second or so more, once)
    result = await run_sweep(slow(), testbed(), seed=1, database=None, time_budget=budget, out=tmp_path)
    assert 2 <= len(result.trials) < 16
    assert result.cut.startswith("the search: the time budget ran out after")
    assert not result.interrupted and result.exit_code == 0
    (found,) = result.boundaries
    assert not found.complete and found.confidence in ("range", "inconclusive")
    assert result.recommendation[0]["confidence"] != "confirmed"
    assert "larger --time-budget" in str(result.recommendation[0]["rerun"])
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["cut"] == result.cut and doc["settings"]["at_most"].startswith("at most 1 s plus one run")


async def test_confirmations_that_fit_are_planned_into_the_budget() -> None:
    spec = slow(confirm_window=0.3)
    planned = outline(spec, time_budget=60, max_trials=None)
    assert planned.confirm_skipped == "" and planned.search_seconds is not None
    assert planned.search_seconds < 60  # the confirmation's time is kept back
    result = await run_sweep(spec, testbed(), seed=1, database=None, time_budget=60)
    assert result.cut == "" and [c["label"] for c in result.confirmation] == ["long run"]
    assert result.boundaries[0].confidence == "confirmed"


async def test_confirmations_that_cannot_fit_are_skipped_and_the_result_says_what_that_costs() -> None:
    spec = slow(confirm_window=100)  # far more than half of the budget
    planned = outline(spec, time_budget=30, max_trials=None)
    assert "skipped" in planned.confirm_skipped and planned.search_seconds == 30
    t0 = time.monotonic()
    result = await run_sweep(spec, testbed(), seed=1, database=None, time_budget=30)
    assert time.monotonic() - t0 < 30  # the 100 s run never began
    assert result.confirmation == ()
    assert "not confirmed by a long run" in result.cut and result.exit_code == 0
    assert result.boundaries[0].confidence == "confirmed"  # the search itself was done


def test_the_cli_says_how_long_at_most_first_and_exits_0_when_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.py").write_text(SLOW_FILE)
    memory = ["--cluster", "connreset.testing:memory_cluster"]
    memory += ["--node-access", "connreset.testing:memory_access"]
    assert cli.main(["sweep", "s.py", *memory, "--time-budget", "1", "--dry-run"]) == 0
    dry = capsys.readouterr().out.splitlines()
    assert dry[0].startswith("sweep slow: the sweep takes at most 1 s plus one run")
    assert not (tmp_path / ".connreset").exists()  # a dry run writes nothing
    args = ["sweep", "s.py", *memory, "--time-budget", "1", "--seed", "1", "--out", "out", "--no-tui"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == dry[0]
    assert "cut: the search: the time budget ran out" in out
    assert json.loads((tmp_path / "out/results.json").read_text())["cut"]


SLOW_FILE = f"""
from connreset import *
from connreset.sweep import Sweep

def experiment(*, max_: int = 256) -> Experiment:
    async def verdict(ctx):
        ctx.finding("fits", max_ >= 1000)

    return Experiment.single("slow", Wait(seconds={RUN}) >> Call(verdict, name="verdict"))

sweep = Sweep(
    name="slow",
    experiment=experiment,
    vary="max_",
    space=range(256, 256 + 64 * 64, 64),
    holds=lambda r: r.findings["main"]["fits"] is True,
)
"""
