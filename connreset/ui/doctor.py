"""``connreset doctor``: the command line around :func:`connreset.doctor.doctor`.

Exit codes: 0 nothing at risk; 1 something at risk or exposed; 2 invalid input (nothing touched);
3 infrastructure error (a node could not be read); 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from connreset.doctor.facts import READ_COMMANDS, READ_FILES
from connreset.doctor.model import DoctorReport
from connreset.doctor.render import kube_proxy_line, render
from connreset.doctor.run import doctor, doctor_plan, doctor_run, make_doctor_testbed
from connreset.testbed import Testbed, TestbedSpec
from connreset.ui.interrupt import two_stage_interrupt


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The doctor's own options (the testbed's are added by the caller, as for ``run``)."""
    p.add_argument("--json", action="store_true", help="print the report as JSON (docs/doctor.md's schema)")
    p.add_argument("--dry-run", action="store_true", help="print what would be read and made; touch nothing")


def main(args: argparse.Namespace, spec: TestbedSpec, journal: Any, tui: bool) -> int:
    """Run the doctor as the parsed ``args`` say; the exit code."""
    testbed = make_doctor_testbed(spec)
    if args.dry_run:
        return dry_run(testbed, args.window)
    from connreset.runs.journal import check_path

    check_path(journal, given=args.journal is not None)
    if tui and not args.json and testbed.node_names():
        return _tui(testbed, args.window, journal)

    async def go() -> DoctorReport | None:
        two_stage_interrupt("interrupted: removing what the doctor made (again to stop waiting)")
        subscribers = []
        if not args.json:
            from connreset.ui.console import ConsoleProgress

            subscribers.append(ConsoleProgress(out=sys.stderr, verbose=args.verbose))
        try:
            return await doctor(testbed, args.window, subscribers=subscribers, journal=journal)
        except asyncio.CancelledError:
            return None

    report = asyncio.run(go())
    if report is None:
        print(f"interrupted; nothing was changed; journal: {journal}", file=sys.stderr)
        return 130
    if args.json:
        print(report.dumps())
    else:
        print(render(report))
        print(kube_proxy_line(report.kube_proxy))
        print(f"journal: {journal}")
    return report.exit_code


def _tui(testbed: Testbed, window: float, journal: Any) -> int:
    """The checks filling in, in the run TUI (one step per node); the report stays on the terminal."""
    from connreset.engine.results import RunResult
    from connreset.tui import RunApp

    nodes = list(testbed.node_names() or ())
    plan = doctor_plan(nodes, window)
    holder: list[DoctorReport] = []

    async def runner(subscribers: Any, abandon: asyncio.Event) -> RunResult:
        report, result = await doctor_run(testbed, window, subscribers=subscribers, journal=journal)
        holder.append(report)
        return result

    app = RunApp(plan.phases, runner, title="doctor", subtitle=testbed.name, handle_signals=True)
    app.run()
    if not holder:
        ended = app.ended
        if ended is not None and ended.cancelled:
            print("interrupted; nothing was changed", file=sys.stderr)
            return 130
        print(f"connreset: {ended.error if ended else 'the TUI stopped'}", file=sys.stderr)
        return ended.exit_code if ended else 3
    print(render(holder[0]))
    print(kube_proxy_line(holder[0].kube_proxy))
    print(f"journal: {journal}")
    return holder[0].exit_code


def dry_run(testbed: Testbed, window: float) -> int:
    """What the doctor would read and make; nothing is opened."""
    print(f"doctor on {testbed.name}, {window:g} s window: read-only; no sysctl, rule or file is written")
    for line in testbed.plan_run("dry-run"):
        print(line)
    print("on each node:")
    print(f"  reads {', '.join(READ_FILES)}")
    for argv in READ_COMMANDS:
        print(f"  runs  {' '.join(argv)}")
    nodes = testbed.node_names()
    print(f"nodes: {', '.join(nodes) if nodes else 'every node the cluster lists'}")
    print("(read-only: the plan has no mutating step, so the engine refuses any change)")
    return 0
