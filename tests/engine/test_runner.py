"""The engine on the test doubles of connreset.testing: order, concurrency, timeouts, cancellation,
undo."""

from __future__ import annotations

import asyncio

import pytest

from connreset import (
    ApplyFix,
    Call,
    Deploy,
    Experiment,
    Phase,
    SetSysctl,
    StepContext,
    ValidationError,
    run,
    workloads,
)
from connreset.errors import ExpectationFailed
from connreset.testing import testbed
from tests.conftest import Recorder

MAX = "net.netfilter.nf_conntrack_max"
LIBERAL = "net.netfilter.nf_conntrack_tcp_be_liberal"


def noop(name: str) -> Call:
    async def fn(ctx: StepContext) -> str:
        return name

    fn.__name__ = name
    return Call(fn)


async def test_sequence_runs_in_order(recorder: Recorder) -> None:
    exp = Experiment.single("order", noop("a") >> noop("b") >> noop("c"))
    result = await run(exp, testbed(), subscribers=[recorder])
    assert result.passed
    assert [e.step for e in recorder.of(type(recorder.started("a")))] == ["a", "b", "c"]
    assert recorder.finished("a").t <= recorder.started("b").t
    assert recorder.finished("b").t <= recorder.started("c").t


async def test_independent_branches_overlap(recorder: Recorder) -> None:
    """Each branch waits for the other to arrive: run one after the other, they would time out."""
    barrier = asyncio.Barrier(2)

    async def meet(ctx: StepContext) -> str:
        await barrier.wait()
        return "met"

    left = Call(meet, name="left", timeout=5)
    right = Call(meet, name="right", timeout=5)
    exp = Experiment.single("par", noop("before") >> (left | right) >> noop("after"))
    result = await run(exp, testbed(), subscribers=[recorder])
    assert result.passed, result.steps
    assert recorder.started("right").t < recorder.finished("left").t
    assert recorder.started("left").t < recorder.finished("right").t
    assert recorder.started("after").t >= max(recorder.finished("left").t, recorder.finished("right").t)


async def test_step_timeout_is_an_error_and_undo_still_runs() -> None:
    backend = testbed()

    async def forever(ctx: StepContext) -> None:
        await asyncio.Event().wait()

    exp = Experiment.single("t", SetSysctl("nf_conntrack_max", 1200) >> Call(forever, timeout=0.05))
    result = await run(exp, backend)
    assert result.outcome == "error"
    assert [s.status for s in result.steps] == ["ok", "error"]
    assert "timed out" in result.steps[1].detail
    assert backend.access.sysctl("node-1", MAX) == "262144"
    assert [u.verified for u in result.undo] == [True]


async def test_undo_after_failure_runs_in_reverse_and_is_verified() -> None:
    backend = testbed()

    async def fail(ctx: StepContext) -> None:
        raise ExpectationFailed("no")

    exp = Experiment.single(
        "u",
        SetSysctl("nf_conntrack_max", 1200)
        >> ApplyFix("be-liberal")
        >> SetSysctl("nf_conntrack_max", 600)
        >> Call(fail)
        >> noop("never"),
    )
    result = await run(exp, backend)
    assert result.outcome == "failed" and result.exit_code == 1
    assert [s.status for s in result.steps] == ["ok", "ok", "ok", "failed", "skipped"]
    writes = [c for c in backend.access.calls if c[0] == "write_file"]
    undo_writes = writes[4:]
    # reverse order: max back to 1200, liberal back to 0 on each node, then max to its original
    assert [(c[2].rsplit("/", 1)[1], c[3]) for c in undo_writes] == [
        ("nf_conntrack_max", "1200"),
        ("nf_conntrack_tcp_be_liberal", "0"),
        ("nf_conntrack_tcp_be_liberal", "0"),
        ("nf_conntrack_max", "262144"),
    ]
    assert backend.access.sysctl("node-1", MAX) == "262144"
    assert all(u.verified and u.status == "done" for u in result.undo)


async def test_undo_that_does_not_take_is_reported_unverified() -> None:
    backend = testbed()
    exp = Experiment.single("v", SetSysctl("nf_conntrack_max", 1200))
    original = backend.access.write_file

    async def sticky(node: str, path: str, data: str, *, host: bool = False) -> None:
        if data == "262144":
            return  # the "kernel" ignores the restore
        await original(node, path, data, host=host)

    backend.access.write_file = sticky  # type: ignore[method-assign]
    result = await run(exp, backend)
    assert [u.verified for u in result.undo] == [False]
    assert "reads 1200" in result.undo[0].detail


async def test_cancellation_undoes_in_reverse_then_propagates(recorder: Recorder) -> None:
    backend = testbed()
    started = asyncio.Event()

    async def block(ctx: StepContext) -> None:
        started.set()
        await asyncio.Event().wait()

    exp = Experiment.single(
        "c", SetSysctl("nf_conntrack_max", 1200) >> ApplyFix("drop-invalid") >> Call(block)
    )
    task = asyncio.create_task(run(exp, backend, subscribers=[recorder]))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert backend.access.sysctl("node-1", MAX) == "262144"
    assert backend.access.rules("node-1") == backend.access.rules("node-2") == []
    undone = [e.record.action for e in recorder.events if type(e).__name__ == "UndoFinished"]
    assert undone == ["rule", "rule", "sysctl"]
    assert recorder.finished("block").status == "cancelled"
    assert backend.cluster.closed and backend.access.closed


async def test_fail_fast_skips_later_phases_and_cancels_siblings() -> None:
    backend = testbed()
    sibling_started = asyncio.Event()

    async def fail(ctx: StepContext) -> None:
        await sibling_started.wait()
        raise ExpectationFailed("boom")

    async def sibling(ctx: StepContext) -> None:
        sibling_started.set()
        await asyncio.Event().wait()

    exp = Experiment("ff", [Phase("one", Call(fail) | Call(sibling)), Phase("two", noop("later"))])
    result = await run(exp, backend)
    status = {s.name: s.status for s in result.steps}
    assert status == {"fail": "failed", "sibling": "cancelled", "later": "skipped"}
    assert [p.status for p in result.phases] == ["failed", "skipped"]


async def test_phase_restore_puts_changes_back_when_the_phase_ends() -> None:
    backend = testbed()
    seen: list[str] = []

    async def look(ctx: StepContext) -> None:
        seen.append(await ctx.nodes()[0].read_sysctl(LIBERAL))

    exp = Experiment(
        "p",
        [
            Phase("fixed", ApplyFix("be-liberal") >> Call(look), restore=True),
            Phase("plain", Call(look, name="look-again")),
        ],
    )
    result = await run(exp, backend)
    assert result.passed
    assert seen == ["1", "0"]


async def test_backend_capabilities_are_checked_before_anything_runs() -> None:
    backend = testbed(capabilities=frozenset({"sysctl", "host-sysctl"}))
    exp = Experiment.single("cap", SetSysctl("nf_conntrack_max", 5) >> ApplyFix("drop-invalid"))
    with pytest.raises(ValidationError, match="cannot do apply-fix"):
        await run(exp, backend)
    assert backend.cluster.calls == backend.access.calls == []


def test_thousand_step_graph_runs(recorder: Recorder) -> None:
    from connreset import run_sync

    steps = noop("s0")
    for i in range(1, 1000):
        steps = steps >> noop(f"s{i}")
    result = run_sync(Experiment.single("big", steps), testbed())
    assert result.passed and len(result.steps) == 1000


async def test_same_step_names_in_two_phases_are_tracked_apart() -> None:
    """A failure in phase two must mark phase two's not-run steps skipped, even when phase one
    ran steps of the same names."""
    backend = testbed()

    async def fail(ctx: StepContext) -> None:
        raise ExpectationFailed("no")

    def phase(name: str, failing: bool) -> Phase:
        first = Call(fail, name="check") if failing else noop("check")
        return Phase(name, first >> noop("after"), restore=True)

    result = await run(Experiment("twice", [phase("one", False), phase("two", True)]), backend)
    by_phase = {(s.phase, s.name): s.status for s in result.steps}
    assert by_phase == {
        ("one", "check"): "ok",
        ("one", "after"): "ok",
        ("two", "check"): "failed",
        ("two", "after"): "skipped",
    }


@pytest.mark.parametrize(
    "step",
    [
        SetSysctl("nf_conntrack_tcp_be_liberal", 1, nodes=["node-9"]),
        Deploy("app", workloads.command(["true"]), node="node-3"),
    ],
)
async def test_unknown_nodes_are_refused_before_anything_runs(step: object) -> None:
    backend = testbed(nodes=2)
    exp = Experiment.single("n", SetSysctl("nf_conntrack_max", 1200) >> step)  # type: ignore[operator]
    with pytest.raises(ValidationError, match="unknown node") as info:
        await run(exp, backend)
    assert info.value.step is not None
    assert backend.cluster.calls == backend.access.calls == []
