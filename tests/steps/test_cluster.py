"""Cluster steps on the test double: log assertions and counts."""

from __future__ import annotations

from connreset import AssertLogs, Call, CountLogs, Deploy, Experiment, Phase, StepContext, run, workloads
from tests.support import FakeBackend


async def test_refuted_log_pattern_fails_when_present() -> None:
    backend = FakeBackend()
    backend.logs["boom-0"] = ["connection established", "ERROR: RST received"]
    exp = Experiment.single(
        "l",
        Deploy("boom", workloads.command(["true"]))
        >> AssertLogs("boom", pattern="RST received", within=0.2, expect=False, record="rst"),
    )
    result = await run(exp, backend)
    assert result.outcome == "failed"
    assert result.findings["main"]["rst"] is True


async def test_count_logs_reports_new_lines_per_phase() -> None:
    backend = FakeBackend()

    def say(*lines: str) -> Call:
        async def fn(ctx: StepContext) -> None:
            backend.logs.setdefault("app-0", []).extend(lines)

        return Call(fn, name="say")

    exp = Experiment(
        "c",
        [
            Phase(
                "one",
                Deploy("app", workloads.command(["true"]))
                >> say("curl: (28) x", "ok")
                >> CountLogs("app", r"^curl:", "errors"),
            ),
            Phase("two", say("curl: (56) y", "curl: (7) z") >> CountLogs("app", r"^curl:", "errors")),
        ],
    )
    result = await run(exp, backend)
    assert result.findings["one"]["errors"] == 1
    assert result.findings["two"]["errors"] == 2
