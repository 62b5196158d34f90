"""Cluster steps on the test doubles: log assertions read the log index, counts, pod states."""

from __future__ import annotations

import asyncio

from connreset import (
    AssertCrashLoop,
    AssertLogs,
    Call,
    CountLogs,
    Deploy,
    Experiment,
    Phase,
    StepContext,
    run,
    workloads,
)
from connreset.testing import MemoryTestbed, testbed


def say(tb: MemoryTestbed, pod: str, *lines: str, name: str = "say") -> Call:
    async def fn(ctx: StepContext) -> None:
        for line in lines:
            tb.cluster.log(pod, line)

    return Call(fn, name=name)


async def test_refuted_log_pattern_fails_when_present() -> None:
    tb = testbed()
    exp = Experiment.single(
        "l",
        Deploy("boom", workloads.command(["true"]))
        >> say(tb, "boom-0", "connection established", "ERROR: RST received")
        >> AssertLogs("boom", pattern="RST received", within=0.2, expect=False, record="rst"),
    )
    result = await run(exp, tb)
    assert result.outcome == "failed"
    assert result.findings["main"]["rst"] is True


async def test_a_log_assertion_waits_for_the_line_and_makes_no_cluster_calls() -> None:
    """The assertion wakes on the line as it arrives; it reads the log index, not the cluster."""
    tb = testbed()
    waiting = asyncio.Event()
    calls: dict[str, int] = {}

    async def later(ctx: StepContext) -> None:
        await waiting.wait()
        for i in range(20):
            tb.cluster.log("boom-0", f"connection established {i}")
            await asyncio.sleep(0)
        tb.cluster.log("boom-0", "boom packet injected")

    def watch(event: object) -> None:
        if getattr(event, "kind", "") == "assert-logs":
            calls[type(event).__name__] = len(tb.cluster.calls)
            if type(event).__name__ == "StepStarted":
                waiting.set()

    exp = Experiment.single(
        "w",
        Deploy("boom", workloads.command(["true"]))
        >> (AssertLogs("boom", pattern="injected", within=30, record="injected") | Call(later)),
    )
    result = await run(exp, tb, subscribers=[watch])
    assert result.passed, result.steps
    assert result.findings["main"]["injected"] is True
    assert calls["StepStarted"] == calls["StepFinished"]


async def test_lines_of_a_deployment_made_again_do_not_count() -> None:
    """Delete and deploy again: the new pods start with no history, as in Kubernetes."""
    tb = testbed()
    exp = Experiment(
        "again",
        [
            Phase("one", Deploy("boom", workloads.command(["true"])) >> say(tb, "boom-0", "RST received")),
            Phase(
                "two",
                Call(_delete("boom"))  # type: ignore[arg-type]
                >> Deploy("boom", workloads.command(["true"]))
                >> AssertLogs("boom", pattern="RST", within=0.1, expect=False, record="rst"),
            ),
        ],
    )
    result = await run(exp, tb)
    assert result.passed, result.steps
    assert result.findings["two"]["rst"] is False


def _delete(name: str) -> object:
    async def delete(ctx: StepContext) -> None:
        await ctx.delete(name)

    return delete


async def test_count_logs_reports_new_lines_per_phase() -> None:
    tb = testbed()
    exp = Experiment(
        "c",
        [
            Phase(
                "one",
                Deploy("app", workloads.command(["true"]))
                >> say(tb, "app-0", "curl: (28) x", "ok")
                >> CountLogs("app", r"^curl:", "errors"),
            ),
            Phase(
                "two",
                say(tb, "app-1", "curl: (56) y", "curl: (7) z") >> CountLogs("app", r"^curl:", "errors"),
            ),
        ],
    )
    result = await run(exp, tb)
    assert result.findings["one"]["errors"] == 1
    assert result.findings["two"]["errors"] == 2


async def test_crash_loop_on_a_backend_without_stand_in_is_as_before() -> None:
    """Pods that exit as the lab's do (no ``crash_stand_in``): CrashLoopBackOff only, no extra
    finding, the same detail."""
    tb = testbed()
    tb.cluster.phase["boom"] = "CrashLoopBackOff"
    exp = Experiment.single(
        "c",
        Deploy("boom", workloads.command(["true"])) >> AssertCrashLoop("boom", within=1, record="crashloop"),
    )
    result = await run(exp, tb)
    assert result.passed
    assert result.findings["main"] == {"crashloop": True}
    [crash] = [s for s in result.steps if s.kind == "assert-crashloop"]
    assert crash.detail == "boom in CrashLoopBackOff: seen within 1s"
