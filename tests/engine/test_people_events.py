"""Events for people watching a run: pod states when they change, progress of long steps."""

from __future__ import annotations

from connreset import (
    AssertCrashLoop,
    Call,
    Deploy,
    Experiment,
    Observe,
    Scale,
    StepContext,
    events,
    run,
    workloads,
)
from connreset.testing import testbed
from tests.conftest import Recorder


async def test_pod_states_are_published_when_a_step_sees_them_change() -> None:
    tb = testbed()
    rec = Recorder()

    async def crash(ctx: StepContext) -> None:
        tb.cluster.phase["app"] = "CrashLoopBackOff"
        tb.cluster.restarts["app"] = 2

    exp = Experiment.single(
        "pods",
        Deploy("app", workloads.command(["true"]))
        >> Scale("app", 2)
        >> Call(crash)
        >> AssertCrashLoop("app", within=5),
    )
    result = await run(exp, tb, subscribers=[rec])
    assert result.outcome == "passed"
    seen = [tuple((p.name, p.phase, p.restarts) for p in e.pods) for e in rec.of(events.PodStates)]
    assert (
        seen
        == [
            (("app-0", "Running", 0),),  # deployed
            (("app-0", "Running", 0), ("app-1", "Running", 0)),  # scaled
            (("app-0", "CrashLoopBackOff", 2), ("app-1", "CrashLoopBackOff", 2)),  # the assertion saw it
            (),  # the undo deleted it? no: only steps publish; see below
        ][: len(seen)]
    )
    assert len(seen) == 3


async def test_observe_reports_progress_and_samples_each_nodes_max() -> None:
    tb = testbed()
    tb.access.counters["node-1"].count = 9
    rec = Recorder()
    await run(Experiment.single("obs", Observe(1.2, every=0.1)), tb, subscribers=[rec])
    (progress,) = rec.of(events.Progress)
    assert progress.step == "observe 1.2s" and progress.total == 1.2 and progress.unit == "s"
    assert 1.0 <= progress.done < 1.2
    assert progress.detail == "conntrack count node-1 9/262144, node-2 0/262144"
    maxes = [(s.node, s.value) for s in rec.of(events.Sample) if s.metric == "conntrack_max"]
    assert maxes == [("node-1", 262144), ("node-2", 262144)]
