"""The sweep in the TUI, driven by Pilot, on the test doubles (no root): the sweep pane, each
trial's run in the other panes, and ``q``."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from pathlib import Path

from textual.pilot import Pilot

from connreset import Call, Deploy, Experiment, SetSysctl, StepContext, events, workloads
from connreset.sweep import Sweep, SweepResult, run_sweep
from connreset.testing import MemoryTestbed, testbed
from connreset.tui import SweepApp
from connreset.tui.widgets import EventLog, PodsTable, StepGraph, SweepPanel, VerdictPanel

MAX = "net.netfilter.nf_conntrack_max"
SIZE = (120, 40)
SPACE = range(256, 256 + 64 * 64, 64)  # 64 values: the first trials are 256, 4288, then 2304


def table_sizes(hold: asyncio.Event, held: asyncio.Event, hold_at: int = 2304) -> Sweep:
    """A trial sets nf_conntrack_max, deploys an app and fits from 1000 up; the trial at
    ``hold_at`` sets ``held`` and waits for ``hold``."""

    def experiment(*, max_: int = 256) -> Experiment:
        async def verdict(ctx: StepContext) -> None:
            if max_ == hold_at:
                held.set()
                await hold.wait()
            ctx.finding("fits", max_ >= 1000)

        return Experiment.single(
            "fits",
            SetSysctl("nf_conntrack_max", max_)
            >> Deploy("app", workloads.command(["true"]), replicas=2)
            >> Call(verdict, name="verdict"),
        )

    return Sweep(
        name="fits",
        experiment=experiment,
        vary="max_",
        space=SPACE,
        holds=lambda r: r.findings["main"]["fits"] is True,
        repeats=0,  # one run per value: this is about the display, not the confirmations
    )


def sweep_app(spec: Sweep, tb: MemoryTestbed, out: Path) -> SweepApp:
    async def runner(subscribers: Sequence[events.Subscriber], abandon: asyncio.Event) -> SweepResult:
        return await run_sweep(
            spec, tb, out=out, seed=1, database=None, subscribers=subscribers, abandon=abandon
        )

    return SweepApp(spec, runner, subtitle=tb.name)


async def ended(app: SweepApp, pilot: Pilot[int]) -> None:
    """Wait for the sweep's worker, then for its SweepEnded message to be handled."""
    await app.workers.wait_for_complete()
    await pilot.pause()
    assert app.ended is not None


async def test_the_sweep_pane_shows_trials_parameters_and_the_boundary_so_far(tmp_path: Path) -> None:
    tb, hold, held = testbed(), asyncio.Event(), asyncio.Event()
    app = sweep_app(table_sizes(hold, held), tb, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await held.wait()  # the third trial runs
        await pilot.pause()
        pane = app.query_one(SweepPanel)
        assert pane.display
        trials, now, last, boundary = pane.lines()
        assert (trials, now, boundary) == (
            "trials 2/8",  # 2 done; the 62 values between need at most 6 more
            "now: max_=2304",
            "boundary: max_ 256 fails, 4288 holds (searching between)",
        )
        assert re.fullmatch(r"last: max_=4288: holds \[\d+\.\ds\]", last), last
        # the trial's own run: its step graph, its pods, its events
        graph = app.query_one(StepGraph).render_text().plain
        assert "✓ nf_conntrack_max=2304" in graph and "✓ deploy app" in graph and "▶ verdict" in graph
        assert "=1280" not in graph  # only this trial's graph
        pods = app.query_one(PodsTable)
        assert [str(pods.get_row_at(i)[1]) for i in range(pods.row_count)] == ["Running", "Running"]
        assert app.title == "sweep fits" and app.sub_title == "fits on memory"
        lines = [line.text for line in app.query_one(EventLog).lines]
        assert lines.count("▶ fits on memory max_=4288") == 1
        assert "◆ sweep 0/8: now max_=256" in lines  # each trial's outcome stays in the events
        assert [line for line in lines if line.startswith("◆ sweep 2/8: max_=4288: holds [")]

        hold.set()
        await ended(app, pilot)
        assert pane.lines()[:2] == ["trials 8/8", "now: -"]
        assert pane.lines()[2].startswith("last: max_=960: fails")
        assert pane.lines()[3] == "boundary: max_ 960 fails, 1024 holds"
        summary = app.query_one(VerdictPanel).text
        assert "the defaults" in summary and " 960 " in summary and " 1024 " in summary
        assert app.status == f"finished: 8 trial(s); results in {tmp_path}  (q: quit)"
        await pilot.press("q")
    assert app.return_value == 0
    assert json.loads((tmp_path / "results.json").read_text())["interrupted"] is False


async def test_q_stops_the_sweep_after_the_trials_undos_and_exits_130(tmp_path: Path) -> None:
    tb, held = testbed(), asyncio.Event()
    app = sweep_app(table_sizes(asyncio.Event(), held), tb, tmp_path)  # the third trial holds for ever
    async with app.run_test(size=SIZE) as pilot:
        await held.wait()
        assert tb.access.sysctl("node-1", MAX) == "2304"
        await pilot.press("q")
        assert app.stopping
        await ended(app, pilot)
    assert app.return_value == 130
    assert app.ended is not None and app.ended.cancelled
    trial = app.ended.trial
    assert trial is not None and trial.cancelled and trial.params == {"max_": 2304}
    assert [(u.description, u.verified) for u in trial.undo] == [
        ("delete deployment app", True),
        (f"{MAX}=262144", True),
    ]
    assert tb.access.sysctl("node-1", MAX) == "262144" and tb.cluster.deployments == {}
    journal = tmp_path / "journals" / "trial-0003.json"
    assert app.status == (
        f"stopped: the trial in flight (max_=2304) put back 2/2 change(s), verified; journal: {journal}; "
        f"2 trial(s) ended; the results so far (marked interrupted): {tmp_path / 'results.json'}, "
        f"{tmp_path / 'plot.png'}, {tmp_path / 'plot.svg'}"
    )
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["interrupted"] is True and [t["params"]["max_"] for t in doc["trials"]] == [256, 4288]
    assert doc["boundaries"][0]["complete"] is False and doc["recommendation"] == []


async def test_a_second_q_stops_waiting_for_the_trials_hung_undo(tmp_path: Path) -> None:
    tb, held = testbed(), asyncio.Event()
    hang = asyncio.Event()

    async def link_dies() -> None:
        await held.wait()
        tb.access.hang.add("write_file")  # the node stops answering: the trial's undo will hang
        hang.set()

    app = sweep_app(table_sizes(asyncio.Event(), held), tb, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await link_dies()
        await pilot.press("q")
        await pilot.press("q")
        await ended(app, pilot)
    assert app.return_value == 130
    assert app.ended is not None and app.ended.trial is not None
    assert app.ended.trial.pending == (f"node-1: {MAX}=262144",)
    assert "put them back with: connreset restore" in app.status
