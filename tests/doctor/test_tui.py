"""The doctor in the run TUI (Pilot, on the test doubles): one step per node fills in."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from connreset import events
from connreset.doctor import doctor_plan
from connreset.doctor.run import doctor_run
from connreset.engine.results import RunResult
from connreset.testing import testbed
from connreset.tui import RunApp
from connreset.tui.widgets import StepGraph


async def test_each_nodes_checks_fill_in() -> None:
    tb = testbed(nodes=2)
    plan = doctor_plan(["node-1", "node-2"], 0.2)
    reports = []

    async def runner(subscribers: Sequence[events.Subscriber], abandon: asyncio.Event) -> RunResult:
        report, result = await doctor_run(tb, 0.2, subscribers=subscribers)
        reports.append(report)
        return result

    app = RunApp(plan.phases, runner, title="doctor")
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.ended is not None and app.ended.result is not None
        graph = app.query_one(StepGraph)
        text = str(graph.render())
        assert "read-node-1" in text and "read-node-2" in text
    assert [n.node for n in reports[0].nodes] == ["node-1", "node-2"]
