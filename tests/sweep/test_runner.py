"""Running a sweep on the test doubles: its events (each trial's, and the sweep's progress), and
stopping it (the trial in flight undone, the results so far written)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from connreset import Call, Experiment, SetSysctl, StepContext, events
from connreset.sweep import Confirmation, Sweep, SweepCancelled, run_sweep
from connreset.testing import MemoryTestbed, testbed
from tests.sweep.test_search import SPACE, make

MAX = "net.netfilter.nf_conntrack_max"


async def test_subscribers_get_each_trials_events_and_the_sweeps_progress() -> None:
    seen: list[events.Event] = []
    result = await run_sweep(make(1000), testbed(), seed=1, database=None, subscribers=[seen.append])
    progress = [e for e in seen if isinstance(e, events.SweepProgress)]
    started = [e for e in seen if isinstance(e, events.RunStarted)]
    assert len(started) == len(result.trials) and len(progress) == len(result.trials) + 1
    # each trial is announced just before it starts, with its parameters
    for announced, run in zip(progress, started, strict=False):
        assert seen.index(announced) < seen.index(run)
        assert run.params["max_"] == announced.params["max_"]
    assert [p.done for p in progress] == list(range(len(result.trials) + 1))
    # planned: the most runs the search can still need: 2 ends and 6 halvings of 64 values, each
    # value confirmed up to twice (a close call is confirmed twice)
    assert progress[0] == events.SweepProgress(0, 24, {"max_": 256}, "", "")
    planned = [p.planned for p in progress]
    assert planned == sorted(planned, reverse=True) and all(p.planned >= p.done for p in progress)
    assert progress[1].last.startswith("max_=256: fails, metric 1000 [")
    assert progress[1].boundary == ""  # one run does not move a boundary: its confirmation is next
    assert progress[2].boundary == "max_ 256 fails"
    assert progress[4].boundary == "max_ 256 fails, 4288 holds (searching between)"
    last = progress[-1]
    assert (last.done, last.planned, last.params) == (len(result.trials), len(result.trials), {})
    assert last.boundary == "max_ 960 fails, 1024 holds"


def held_sweep(tb: MemoryTestbed, held: asyncio.Event, hold_at: tuple[int, int], **extra: object) -> Sweep:
    """Table sizes on the doubles: a trial sets nf_conntrack_max, and fits from 1000 × pods up; the
    trial at ``hold_at`` (pods, value) holds until it is stopped."""

    def experiment(*, max_: int = 256, pods: int = 1) -> Experiment:
        async def verdict(ctx: StepContext) -> None:
            if (pods, max_) == hold_at:
                held.set()
                await asyncio.Event().wait()
            ctx.finding("fits", max_ >= 1000 * pods)

        return Experiment.single("fits", SetSysctl("nf_conntrack_max", max_) >> Call(verdict, name="verdict"))

    options: dict[str, object] = {
        "name": "held",
        "experiment": experiment,
        "vary": "max_",
        "space": SPACE,
        "holds": lambda r: r.findings["main"]["fits"] is True,
        **extra,
    }
    return Sweep(**options)  # type: ignore[arg-type]


async def stop_when_held(sweeping: asyncio.Task[object], held: asyncio.Event) -> SweepCancelled:
    await held.wait()
    sweeping.cancel()
    with pytest.raises(SweepCancelled) as stopped:
        await sweeping
    return stopped.value


async def test_stopping_a_sweep_undoes_the_trial_in_flight_and_writes_what_the_others_found(
    tmp_path: Path,
) -> None:
    tb, held, seen = testbed(), asyncio.Event(), []
    # pods=1 settles at 960/1024; pods=2 is stopped in its third trial (the first halving: 2304)
    spec = held_sweep(tb, held, (2, 2304), workloads=[{"pods": 1}, {"pods": 2}])
    sweeping = asyncio.ensure_future(
        run_sweep(spec, tb, out=tmp_path, seed=1, database=None, subscribers=[seen.append])
    )
    stopped = await stop_when_held(sweeping, held)  # type: ignore[arg-type]

    assert stopped.trial is not None and stopped.trial.cancelled
    assert [(u.description, u.verified) for u in stopped.trial.undo] == [(f"{MAX}=262144", True)]
    assert tb.access.sysctl("node-1", MAX) == "262144"
    in_flight = len(stopped.result.trials) + 1
    assert stopped.trial.journal == str(tmp_path / "journals" / f"trial-{in_flight:04d}.json")
    result = stopped.result
    assert result.interrupted
    first, second = result.boundaries
    assert (first.last_failing, first.first_holding, first.complete) == (960, 1024, True)
    assert (second.workload, second.last_failing, second.first_holding) == ({"pods": 2}, 256, 4288)
    assert not second.complete and second.trials == 2 * 2  # two values, each confirmed
    assert result.lines == ["pods=1: max_ ≥ 1024"]  # only from the settled boundary
    assert [t.params["max_"] for t in result.trials[-4:]] == [256, 256, 4288, 4288]
    assert len([e for e in seen if isinstance(e, events.RunStarted)]) == len(result.trials) + 1

    assert stopped.written == (tmp_path / "results.json", tmp_path / "plot.png", tmp_path / "plot.svg")
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["interrupted"] is True and len(doc["trials"]) == len(result.trials)
    assert doc["boundaries"][1]["complete"] is False and len(doc["recommendation"]) == 1


async def test_stopping_a_confirmation_keeps_the_search_and_the_confirmations_done(tmp_path: Path) -> None:
    tb, held = testbed(), asyncio.Event()
    spec = held_sweep(
        tb,
        held,
        (1, 2048),
        confirm=lambda workload, rec: [
            Confirmation("at the boundary", {"max_": 1024}, True),
            Confirmation("twice that", {"max_": 2048}, True),
        ],
    )
    sweeping = asyncio.ensure_future(run_sweep(spec, tb, out=tmp_path, seed=1, database=None))
    stopped = await stop_when_held(sweeping, held)  # type: ignore[arg-type]
    assert stopped.trial is not None and stopped.trial.params["max_"] == 2048
    assert stopped.result.interrupted and stopped.result.boundaries[0].complete
    assert stopped.result.lines == ["the defaults: max_ ≥ 1024"]
    assert [c["label"] for c in stopped.result.confirmation] == ["at the boundary"]
    assert tb.access.sysctl("node-1", MAX) == "262144"
