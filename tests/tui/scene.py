"""A fixed scene for the TUI: a blog-like run, fed as synthetic events (for snapshots and the docs'
screenshots; nothing in it depends on time)."""

from __future__ import annotations

from connreset import (
    AssertCrashLoop,
    AssertTableFull,
    Deploy,
    Experiment,
    Observe,
    Phase,
    RecordPods,
    Scale,
    SetSysctl,
    events,
    workloads,
)
from connreset.engine.results import PhaseVerdict, RunResult, UndoResult
from connreset.plan import Plan, build
from connreset.tui import Bridge, RunApp, RunEnded

SIZE = (110, 36)


def plan() -> Plan:
    return build(
        Experiment(
            "blog-repro",
            [
                Phase(
                    "baseline",
                    Deploy("clients", workloads.command(["true"]), replicas=50)
                    >> Deploy("canary", workloads.command(["true"]))
                    >> (Observe(10) | AssertCrashLoop("canary", within=10, expect=None)),
                    expect="50 clients Running, no drops",
                ),
                Phase(
                    "saturate",
                    SetSysctl("nf_conntrack_max", 1200)
                    >> Scale("clients", 60)
                    >> (Observe(10) | AssertTableFull(within=10) | RecordPods("canary")),
                    expect="count reaches max 1200; drops",
                ),
            ],
        )
    )


def app() -> RunApp:
    return RunApp(plan().phases, title="blog-repro")


def result() -> RunResult:
    return RunResult(
        "blog-repro",
        {},
        "lab",
        "passed",
        False,
        (),
        (
            PhaseVerdict("baseline", "passed", "50 clients Running, no drops", {"count_peak": 2639}, ()),
            PhaseVerdict(
                "saturate", "passed", "count reaches max 1200; drops", {"table_full": True, "drop": 474}, ()
            ),
        ),
        {},
        (UndoResult("sysctl", "node-1", "net.netfilter.nf_conntrack_max=262144", "done", True, "read back"),),
        None,
    )


def feed(app: RunApp, *, finished: bool = True) -> None:
    """Post the scene's events (and, with ``finished``, its end) to the app."""
    post = Bridge(app)
    p = plan()
    post(events.RunStarted("blog-repro", {"observe": 10}, "lab", "", {}, ("baseline", "saturate"), 9))
    for phase in p.phases:
        post(events.PhaseStarted(phase.name, 0.0))
        for flat in phase.steps:
            post(events.StepStarted(flat.name, flat.step.kind, phase.name, 0.0, ""))
            last = phase.name == "saturate" and flat.step.kind in (
                "observe",
                "assert-table-full",
                "record-pods",
            )
            if not (last and not finished):
                post(events.StepFinished(flat.name, flat.step.kind, phase.name, "ok", 0.0, "", 1.0, ""))
        if finished or phase.name == "baseline":
            post(events.PhaseFinished(phase.name, "passed", 0.0))
    if not finished:
        post(events.Progress("observe 10s", "saturate", 6, 10, "s", "conntrack count node-1 1200/1200"))
    for node, counts, limit, drop in (
        ("node-1", (300, 700, 1100, 1200, 1200, 1200), 1200, 474),
        ("node-2", (250, 600, 900, 1000, 1150, 1190), 1200, 12),
    ):
        post(events.Sample(0.0, node, "conntrack_max", limit))
        for value in counts:
            post(events.Sample(0.0, node, "conntrack_count", value))
        post(events.Sample(0.0, node, "conntrack_drop", drop))
        post(events.Sample(0.0, node, "conntrack_invalid", 0))
    post(
        events.PodStates(
            0.0,
            "canary",
            (events.PodState("canary-0", "CrashLoopBackOff", 2, "node-2"),),
        )
    )
    post(
        events.PodStates(
            0.0, "clients", tuple(events.PodState(f"clients-{i}", "Running", 0, "node-1") for i in range(4))
        )
    )
    post(events.PodLog(0.0, "canary-0", "boom: connection reset by peer", "canary"))
    post(events.PodLog(0.0, "clients-0", "curl: (28) Connection timed out", "clients"))
    post(events.StepNote("nf_conntrack_max=1200", "saturate", "nf_conntrack_max: 262144 → 1200"))
    if finished:
        app.post_message(RunEnded(result(), exit_code=0))
