"""The TUI driving a real experiment on the lab (root): Pilot reads what the screen shows."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from connreset import TestbedSpec, events, load, run
from connreset.engine.results import RunResult
from connreset.tui import RunApp
from connreset.tui.widgets import EventLog, PodsTable, StepGraph, VerdictPanel

ROOT = Path(__file__).parent.parent.parent


@pytest.mark.root
@pytest.mark.slow
async def test_issue_74839_with_a_fix_in_the_tui() -> None:
    plan = load(ROOT / "experiments/issue_74839.py", {"fix": "be-liberal", "window": 3.0, "every": 1.0})

    async def runner(subscribers: Sequence[events.Subscriber], abandon: asyncio.Event) -> RunResult:
        return await run(plan, TestbedSpec(), subscribers=subscribers, abandon=abandon)

    app = RunApp(plan.phases, runner, title=plan.experiment.name)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.ended is not None and app.result is not None, app.status
        graph = app.query_one(StepGraph).render_text().plain
        assert "✓ fix-be-liberal  passed" in graph
        assert "✓ refute boom-server logs /RST received/" in graph
        pods = app.query_one(PodsTable)
        phases = {str(pods.get_row_at(i)[0]): str(pods.get_row_at(i)[1]) for i in range(pods.row_count)}
        assert any(name.startswith("boom-server") for name in phases)
        assert "CrashLoopBackOff" not in phases.values()
        assert "fix-be-liberal  PASSED" in app.query_one(VerdictPanel).text
        lines = [line.text for line in app.query_one(EventLog).lines]
        assert any("nf_conntrack_tcp_be_liberal" in line and "↶ ✓" in line for line in lines)
        assert app.status.startswith("finished: passed;")
        assert "PASSED" in app.export_screenshot()
        await pilot.press("q")
    assert app.return_value == 0
