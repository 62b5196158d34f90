"""Fixed scenes for the TUI: a blog-like run, and a table-size sweep's fourth trial, fed as synthetic
events (for snapshots and the docs' screenshots; nothing in them depends on time)."""

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
from connreset.experiment.plan import Plan, build
from connreset.sweep import Sweep
from connreset.tui import Bridge, RunApp, RunEnded, SweepApp

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
            PhaseVerdict("baseline", "passed", "50 clients Running, no drops", {"count_peak": 1190}, ()),
            PhaseVerdict(
                "saturate", "passed", "count reaches max 1200; drops", {"table_full": True, "drop": 531}, ()
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
        ("node-1", (0, 400, 800, 1200, 1200, 1200), 1200, 531),  # as blog_repro measured
        ("node-2", (0, 380, 790, 1200, 1200, 1200), 1200, 81),
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
    post(
        events.PodLog(
            0.0,
            "clients-0",
            "curl: (28) Failed to connect to 198.19.0.1 port 80 after 5001 ms: Timeout was reached",
            "clients",
        )
    )
    post(events.StepNote("nf_conntrack_max=1200", "saturate", "nf_conntrack_max: 262144 → 1200"))
    if finished:
        app.post_message(RunEnded(result(), exit_code=0))


def table_trial(*, pods: int = 50, size: int = 1200) -> Experiment:
    """One trial of the sweep scene: ``pods`` clients against a table of ``size`` entries."""
    return Experiment.single(
        "table-size",
        SetSysctl("nf_conntrack_max", size)
        >> Deploy("clients", workloads.command(["true"]), replicas=pods)
        >> (Observe(8) | AssertTableFull(within=8, expect=False)),
    )


def sweep() -> Sweep:
    return Sweep(
        name="table-sizes",
        experiment=table_trial,
        vary="size",
        space=range(600, 4800 + 1, 100),
        holds=lambda r: r.findings["main"].get("table_full") is False,
        workloads=[{"pods": 50}],
    )


def sweep_app() -> SweepApp:
    return SweepApp(sweep(), subtitle="lab")


def feed_sweep(app: SweepApp) -> None:
    """Post the sweep scene's events: three trials done, the fourth observing."""
    post = Bridge(app)
    post(
        events.SweepProgress(
            3,
            8,
            {"pods": 50, "size": 2700},
            "pods=50: size 1200 fails, 4800 holds (searching between)",
            "pods=50, size=1200: fails, count_peak 1200 [11.2s]",
        )
    )
    params = {"pods": 50, "size": 2700}
    post(events.RunStarted("table-size", params, "lab", "", {}, ("main",), 4))
    p = sweep().plan(params)
    (phase,) = p.phases
    post(events.PhaseStarted(phase.name, 0.0))
    for flat in phase.steps:
        post(events.StepStarted(flat.name, flat.step.kind, phase.name, 0.0, ""))
        if flat.step.kind in ("set-sysctl", "deploy"):
            post(events.StepFinished(flat.name, flat.step.kind, phase.name, "ok", 0.0, "", 1.0, ""))
    post(events.Progress("observe 8s", "main", 5, 8, "s", "conntrack count node-1 2100/2700"))
    for node, counts in (("node-1", (900, 1500, 2000, 2100)), ("node-2", (800, 1400, 1900, 2050))):
        post(events.Sample(0.0, node, "conntrack_max", 2700))
        for value in counts:
            post(events.Sample(0.0, node, "conntrack_count", value))
        post(events.Sample(0.0, node, "conntrack_drop", 0))
        post(events.Sample(0.0, node, "conntrack_invalid", 0))
    post(
        events.PodStates(
            0.0, "clients", tuple(events.PodState(f"clients-{i}", "Running", 0, "node-1") for i in range(4))
        )
    )
    post(events.StepNote("nf_conntrack_max=2700", "main", "nf_conntrack_max: 262144 → 2700"))
