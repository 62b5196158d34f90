"""The TUI driven by Pilot, running experiments on the test doubles (no root)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from textual.pilot import Pilot

from connreset import (
    AssertRunning,
    Call,
    Deploy,
    Experiment,
    Observe,
    Phase,
    Scale,
    SetSysctl,
    StepContext,
    events,
    run,
    workloads,
)
from connreset.engine.results import RunResult
from connreset.experiment.plan import build
from connreset.testing import MemoryTestbed, testbed
from connreset.tui import Bridge, RunApp
from connreset.tui.widgets import (
    EventLog,
    NodeGauges,
    PodLogs,
    PodsTable,
    StepGraph,
    SweepPanel,
    VerdictPanel,
)

MAX = "net.netfilter.nf_conntrack_max"
SIZE = (120, 40)


def app_for(experiment: Experiment, tb: MemoryTestbed) -> RunApp:
    plan = build(experiment)

    async def runner(subscribers: Sequence[events.Subscriber], abandon: asyncio.Event) -> RunResult:
        return await run(plan, tb, subscribers=subscribers, abandon=abandon)

    return RunApp(plan.phases, runner, title=plan.experiment.name)


async def ended(app: RunApp, pilot: Pilot[int]) -> None:
    """Wait for the engine's worker, then for its RunEnded message to be handled."""
    await app.workers.wait_for_complete()
    await pilot.pause()
    assert app.ended is not None


def rows(table: PodsTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_a_run_shows_its_graph_nodes_pods_and_verdict() -> None:
    tb = testbed()
    tb.access.counters["node-1"].count = 700
    tb.access.counters["node-1"].stats["drop"] = 5
    exp = Experiment(
        "shown",
        [
            Phase(
                "fill",
                SetSysctl("nf_conntrack_max", 1200)
                >> Deploy("app", workloads.command(["true"]), replicas=2)
                >> (Observe(0.3, every=0.1) | AssertRunning("app", within=1) | Scale("app", 3)),
                expect="the table fills",
            )
        ],
    )
    app = app_for(exp, tb)
    async with app.run_test(size=SIZE) as pilot:
        tb.cluster.log("app-0", "hello from app-0")
        await ended(app, pilot)
        graph = app.query_one(StepGraph).render_text().plain
        assert "✓ fill  passed" in graph
        assert "✓ observe 0.3s │ ✓ assert app running │ ✓ scale app to 3" in graph  # side by side
        gauge = app.query_one(NodeGauges).gauges["node-1"]
        assert gauge.caption() == "node-1  count 700 / max 1,200  58%\ndrop 5  invalid 0"
        assert len(gauge.history) >= 3 and set(gauge.history) == {700}
        assert rows(app.query_one(PodsTable)) == [[f"app-{i}", "Running", "0", "node-1"] for i in range(3)]
        verdict = app.query_one(VerdictPanel)
        assert verdict.display and "fill   PASSED     the table fills" in verdict.text
        assert app.status == "finished: passed; 2/2 change(s) put back and verified  (q: quit)"
        assert "PASSED" in app.export_screenshot()
        await pilot.press("q")
    assert app.return_value == 0


async def test_q_stops_the_run_after_its_undos_and_exits_130() -> None:
    tb = testbed()
    holding = asyncio.Event()

    async def hold(ctx: StepContext) -> None:
        holding.set()
        await asyncio.Event().wait()

    app = app_for(Experiment.single("held", SetSysctl("nf_conntrack_max", 1200) >> Call(hold)), tb)
    async with app.run_test(size=SIZE) as pilot:
        await holding.wait()
        assert tb.access.sysctl("node-1", MAX) == "1200"
        await pilot.press("q")
        await ended(app, pilot)
    assert app.return_value == 130
    assert tb.access.sysctl("node-1", MAX) == "262144"
    assert app.status == "stopped: 1/1 change(s) put back and verified"
    assert app.result is not None and app.result.cancelled


async def test_a_second_q_stops_waiting_for_a_hung_undo() -> None:
    tb = testbed()
    holding = asyncio.Event()

    async def hold(ctx: StepContext) -> None:
        tb.access.hang.add("write_file")  # the node stops answering: its undo will hang
        holding.set()
        await asyncio.Event().wait()

    app = app_for(Experiment.single("hung", SetSysctl("nf_conntrack_max", 1200) >> Call(hold)), tb)
    async with app.run_test(size=SIZE) as pilot:
        await holding.wait()
        await pilot.press("q")
        assert app.stopping and "stopping: putting everything back" in app.status
        await pilot.press("q")
        await ended(app, pilot)
    assert app.return_value == 130
    assert app.result is not None
    assert app.result.pending == ("node-1: net.netfilter.nf_conntrack_max=262144",)
    assert tb.access.sysctl("node-1", MAX) == "1200"  # left as the journal says, for `restore`


async def test_l_toggles_the_pod_logs() -> None:
    app = RunApp(build(Experiment.single("x", SetSysctl("nf_conntrack_max", 1200))).phases)
    async with app.run_test(size=SIZE) as pilot:
        logs = app.query_one(PodLogs)
        assert logs.display
        await pilot.press("l")
        assert not logs.display
        await pilot.press("l")
        assert logs.display


async def test_pod_states_and_logs_arrive_through_the_bridge_in_order() -> None:
    app = RunApp(build(Experiment.single("x", SetSysctl("nf_conntrack_max", 1200))).phases)
    async with app.run_test(size=SIZE) as pilot:
        bridge = Bridge(app)
        crash = events.PodState("boom-0", "CrashLoopBackOff", 2, "node-2")
        bridge(events.PodStates(1.0, "boom", (events.PodState("boom-0", "Running", 0, "node-2"),)))
        bridge(events.PodStates(2.0, "boom", (crash,)))
        bridge(events.PodLog(2.1, "boom-0", "RST received", "boom"))
        bridge(events.StepNote("s", "main", "a note"))
        await pilot.pause()
        assert rows(app.query_one(PodsTable)) == [["boom-0", "CrashLoopBackOff", "2", "node-2"]]
        assert [str(line.text) for line in app.query_one(PodLogs).lines] == ["boom-0: RST received"]
        assert "  · a note" in [line.text for line in app.query_one(EventLog).lines]


async def test_the_sweep_panel_shows_trials_parameters_and_boundary() -> None:
    app = RunApp(build(Experiment.single("x", SetSysctl("nf_conntrack_max", 1200))).phases)
    async with app.run_test(size=SIZE) as pilot:
        sweep = app.query_one(SweepPanel)
        assert not sweep.display  # hidden until a sweep reports
        Bridge(app)(events.SweepProgress(3, 8, {"max": 900}, "max 600 fails, 1200 holds", "max=600: fails"))
        await pilot.pause()
        assert sweep.display
        assert sweep.lines() == [
            "trials 3/8",
            "now: max=900",
            "last: max=600: fails",
            "boundary: max 600 fails, 1200 holds",
        ]


async def test_the_header_names_the_labs_kube_proxy() -> None:
    app = RunApp(build(Experiment.single("x", Call(_nothing))).phases, title="x")
    async with app.run_test(size=SIZE) as pilot:
        env = {"cluster": {"kube_proxy": "nftables (kube-proxy v1.33+ ...)"}}
        Bridge(app)(events.RunStarted("issue-74839", {"fix": "none"}, "lab", "", env, ("no-fix",), 1))
        await pilot.pause()
        assert app.sub_title == "lab (kube-proxy nftables)  fix=none"


async def _nothing(ctx: StepContext) -> None:
    return None
