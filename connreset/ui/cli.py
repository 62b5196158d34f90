"""The command line: argument parsing and console output only.

Exit codes: 0 every expectation held; 1 an expectation failed; 2 invalid input;
3 infrastructure error; 130 interrupted (after undoing).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from connreset._support.redact import redact
from connreset._version import __version__
from connreset.engine.options import UNDO_TIMEOUT, RunOptions
from connreset.engine.watchdog import LEASE
from connreset.errors import ConnresetError, ValidationError
from connreset.testbed import TestbedSpec
from connreset.ui.interrupt import two_stage_interrupt
from connreset.ui.kernels import guest_args, kernels_parser, progress

COMMANDS = ("run", "sweep", "restore", "report", "plugins", "lab", "doctor", "kernels")
LOAD_TIMEOUT = 30.0


def _kv(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds > 0, got {text!r}")
    return value


def _lease(text: str) -> float:
    return 0.0 if text.strip() in ("0", "0.0") else _positive(text)


def _whole(text: str, minimum: int, maximum: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
        raise argparse.ArgumentTypeError(f"expected {bound}, got {value}")
    return value


def _count(text: str) -> int:
    return _whole(text, 1)


def _count_or_zero(text: str) -> int:
    return _whole(text, 0)


def _lab_nodes(text: str) -> int:
    from connreset.lab.addressing import MAX_NODES

    return _whole(text, 1, MAX_NODES)


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line on stderr (with where to read more), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _testbed_args(p: argparse.ArgumentParser, cluster_default: str | None) -> None:
    p.add_argument(
        "--cluster",
        default=cluster_default,
        help="cluster backend: an installed name or module:factory"
        + (f" (default: {cluster_default})" if cluster_default else " (default: the journal's)"),
    )
    p.add_argument("--node-access", default=None, help="node access (default: the cluster's own)")
    _pairs(p, "--cluster-opt", "an option for the cluster backend (repeatable), e.g. nodes=3")
    _pairs(p, "--node-opt", "an option for the node access (repeatable)")


def _pairs(p: argparse.ArgumentParser, flag: str, help: str, dest: str | None = None) -> None:
    """A repeatable ``FLAG K=V`` option, gathered as a list of (K, V)."""
    name = dest or flag.removeprefix("--").replace("-", "_")
    p.add_argument(flag, dest=name, action="append", type=_kv, default=[], metavar="K=V", help=help)


def _tui_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tui",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the live terminal UI (default: when stdout is a terminal); --no-tui: plain lines",
    )


def _wants_tui(args: argparse.Namespace) -> bool:
    return bool(args.tui if args.tui is not None else sys.stdout.isatty())


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="connreset",
        description="Declarative experiments for Kubernetes connection resets (kubernetes#74839).",
        epilog="`connreset FILE.py` is short for `connreset run FILE.py`. "
        "Exit codes: 0 passed, 1 an expectation failed, 2 invalid input, 3 infrastructure error, "
        "130 interrupted (after undoing).",
    )
    p.add_argument("--version", action="version", version=f"connreset {__version__}")
    p.add_argument("--log-format", choices=("console", "json"), help="default: console on a TTY")
    p.add_argument("-v", "--verbose", action="count", default=0)
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    r = sub.add_parser("run", help="run an experiment file (the default command)")
    r.add_argument("file", type=Path)
    _pairs(r, "--set", "set an experiment parameter (repeatable)", dest="sets")
    r.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan and change nothing; it still runs the experiment file's Python, as any run does",
    )
    _testbed_args(r, cluster_default="lab")
    guest_args(r)
    r.add_argument(
        "--load-timeout",
        type=_positive,
        default=LOAD_TIMEOUT,
        metavar="SECONDS",
        help=f"seconds the experiment file may take to load (default {LOAD_TIMEOUT:g})",
    )
    r.add_argument("--journal", type=Path, help="journal path (default: .connreset/runs/...)")
    r.add_argument(
        "--overwrite",
        action="store_true",
        help="let --journal replace a file that is not the journal of an ended run",
    )
    _tui_arg(r)
    r.add_argument(
        "--step-timeout", type=_positive, default=None, help="seconds per step, unless it sets its own"
    )
    r.add_argument(
        "--undo-timeout",
        type=_positive,
        default=UNDO_TIMEOUT,
        help=f"seconds each undo may take before it is left pending (default {UNDO_TIMEOUT:g})",
    )

    r.add_argument(
        "--watchdog-lease",
        type=_lease,
        default=LEASE,
        metavar="SECONDS",
        help="if this process stops renewing for that long (killed, machine lost), a watchdog on "
        f"each node puts its settings back by itself (default {LEASE:g}; 0: no watchdogs)",
    )

    w = sub.add_parser("sweep", help="search where a property stops holding (a sweep file)")
    w.add_argument("file", type=Path)
    _testbed_args(w, cluster_default="lab")
    guest_args(w, several=True)
    w.add_argument("--seed", type=int, default=None, help="the same seed gives the same trials")
    w.add_argument(
        "--max-trials",
        type=_count,
        default=None,
        help="stop searching after N runs (confirming runs included)",
    )
    w.add_argument(
        "--time-budget",
        type=_positive,
        default=None,
        help="end the whole sweep, confirmations included, within S seconds plus one run",
    )
    w.add_argument(
        "--repeats",
        type=_count_or_zero,
        default=None,
        help="runs that confirm each value's verdict (default: 1, or 2 for a close call)",
    )
    w.add_argument(
        "--out", type=Path, default=None, help="results directory (default .connreset/sweeps/NAME/results)"
    )
    w.add_argument("--no-confirm", action="store_true", help="skip the confirmation runs")
    w.add_argument(
        "--dry-run", action="store_true", help="say what the sweep would do and how long; run nothing"
    )
    w.add_argument(
        "--watchdog-lease", type=_lease, default=LEASE, metavar="SECONDS", help="as for `run` (each trial's)"
    )
    _tui_arg(w)

    s = sub.add_parser("restore", help="put back what an interrupted run changed")
    s.add_argument("journal", type=Path, nargs="?", help="journal to restore from (default: the lab's state)")
    _testbed_args(s, cluster_default=None)
    s.add_argument("--undo-timeout", type=_positive, default=UNDO_TIMEOUT)
    s.add_argument(
        "--kernel",
        default=None,
        metavar="K",
        help="restore in the standing guest of this kernel (`lab up --kernel K`), if one is up",
    )

    rep = sub.add_parser("report", help="a Markdown summary of a journal; --html: a self-contained report")
    rep.add_argument("journal", type=Path)
    rep.add_argument("--html", type=Path, metavar="OUT", help="write the HTML report here")

    pl = sub.add_parser("plugins", help="list installed cluster backends and node accesses")
    pl.add_argument(
        "--options", metavar="NAME", help="list the options a cluster backend or node access takes"
    )

    d = sub.add_parser("doctor", help="is my cluster exposed? a read-only check of the nodes")
    _testbed_args(d, cluster_default="lab")
    d.add_argument(
        "--window", type=_positive, default=10.0, help="seconds to measure rates over (default 10)"
    )
    d.add_argument("--journal", type=Path, help="journal path (default: .connreset/runs/...)")
    _tui_arg(d)
    guest_args(d)
    from connreset.ui.doctor import add_arguments

    add_arguments(d)

    lab = sub.add_parser("lab", help="the embedded lab: up, down, status")
    lab.add_argument("action", choices=("up", "down", "status"))
    lab.add_argument("--nodes", type=_lab_nodes, default=2, help="for `up`: how many nodes, 1 to 60")
    _pairs(lab, "--cluster-opt", "for `up`: proxy=MODE, the kube-proxy the nodes run (default iptables)")
    guest_args(lab)
    lab.add_argument("--only-host", action="store_true", help=argparse.SUPPRESS)  # a watchdog's lab down
    k = kernels_parser(sub)
    for sp in (r, w, s, lab, d, k):
        sp.add_argument("--log-format", choices=("console", "json"), default=argparse.SUPPRESS)
        sp.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS)
    return p


#: The top-level options that take a value as the next word.
_VALUED = ("--log-format",)


def _with_command(args: list[str]) -> list[str]:
    """``connreset [OPTIONS] FILE ...`` is ``connreset [OPTIONS] run FILE ...``: the first word that
    is neither an option nor an option's value is a command, or else the experiment file."""
    i = 0
    while i < len(args):
        word = args[i]
        if word in _VALUED:
            i += 2
        elif word.startswith("-"):
            i += 1
        else:
            return args if word in COMMANDS else [*args[:i], "run", *args[i:]]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args_list = _with_command(list(sys.argv[1:] if argv is None else argv))
    p = parser()
    try:
        args, unknown = p.parse_known_args(args_list)
        if unknown:  # as parse_args would say it, with a hint for a parameter given as a flag
            p.error(f"unrecognized arguments: {' '.join(unknown)}{_as_set(args, unknown)}")
    except SystemExit as exc:  # --help and --version (0), or a usage error (2, said in one line)
        return exc.code if isinstance(exc.code, int) else 2
    from connreset._support.logs import configure

    configure(args.log_format, args.verbose)
    try:
        if getattr(args, "kernel", None) is not None and not getattr(args, "dry_run", False):
            return _in_guest(args, args_list)
        if args.command == "kernels":
            from connreset.ui.kernels import kernels_main

            return kernels_main(args)
        if args.command == "run":
            return _run(args)
        if args.command == "restore":
            return _restore(args)
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "report":
            return _report(args)
        if args.command == "plugins":
            return _plugins(args.options)
        if args.command == "lab":
            return _lab(args)
        if args.command == "doctor":
            return _doctor(args)
        print("connreset: no command or experiment file given (see `connreset --help`)", file=sys.stderr)
        return 2
    except ConnresetError as exc:
        print(f"connreset: {exc}", file=sys.stderr)
        return exc.exit_code


def _as_set(args: argparse.Namespace, unknown: Sequence[str]) -> str:
    """``; offset is a parameter of FILE: give it as --set offset=5`` for the words of ``unknown``
    that name a parameter of the experiment file being run (read from the file only then)."""
    if getattr(args, "command", None) != "run" or not any(w.startswith("--") for w in unknown):
        return ""
    from connreset.experiment.loader import parameters

    declared = parameters(args.file)
    found: list[tuple[str, str]] = []
    for i, word in enumerate(unknown):
        flag, eq, value = word.removeprefix("--").partition("=")
        name = flag.replace("-", "_")
        if not word.startswith("--") or name not in declared:
            continue
        if not eq:
            following = unknown[i + 1] if i + 1 < len(unknown) else "--"
            bare = "true" if declared[name].type is bool else "…"  # --flag alone: a switch
            value = bare if following.startswith("--") else following
        found.append((name, value))
    if not found:
        return ""
    which = ", ".join(name for name, _ in found)
    them = "it" if len(found) == 1 else "them"
    sets = " ".join(f"--set {name}={value}" for name, value in found)
    are = "is a parameter" if len(found) == 1 else "are parameters"
    return f"; {which} {are} of {args.file}: give {them} as {sets}"


def _spec(args: argparse.Namespace, file_options: dict[str, str]) -> TestbedSpec:
    return TestbedSpec(
        args.cluster,
        args.node_access,
        {**file_options, **dict(args.cluster_opt)},
        dict(args.node_opt),
    )


def _run(args: argparse.Namespace) -> int:
    from connreset.experiment import loader
    from connreset.experiment.checks import check_plan
    from connreset.runs import make_testbed

    with loader.deadline(args.load_timeout, args.file):
        plan = loader.load(args.file, raw=dict(args.sets))
    testbed = make_testbed(_spec(args, plan.options_for(args.cluster)))
    try:
        check_plan(plan.phases, testbed)
    except ValidationError as exc:
        raise exc.located(str(args.file)) from None
    if args.dry_run:
        return asyncio.run(_dry_run(plan, testbed))
    from connreset.engine.runner import RunCancelled
    from connreset.runs import run
    from connreset.runs.journal import check_path, default_path
    from connreset.ui.console import ConsoleProgress, verdict_table

    journal = args.journal or default_path(plan.experiment.name)
    check_path(journal, given=args.journal is not None, overwrite=args.overwrite)  # before the TUI, too
    options = RunOptions(
        journal=journal,
        step_timeout=args.step_timeout,
        undo_timeout=args.undo_timeout,
        watchdog_lease=args.watchdog_lease,
    )
    if _wants_tui(args):
        return _run_tui(plan, testbed, options)

    async def go() -> int:
        abandon = two_stage_interrupt("interrupted: putting everything back (again to stop waiting)")
        try:
            result = await run(
                plan,
                testbed,
                options=options.but(
                    subscribers=[progress(args, ConsoleProgress(verbose=args.verbose))], abandon=abandon
                ),
            )
        except RunCancelled as exc:
            print(_interrupted(exc.result, journal), file=sys.stderr)
            return 130
        except asyncio.CancelledError:  # before the run began (while the testbed was opening)
            print("interrupted before the run began; nothing was left changed", file=sys.stderr)
            return 130
        print()
        print(verdict_table(result))
        if result.pending:
            print(_pending(result.pending, journal), file=sys.stderr)
        return result.exit_code

    return asyncio.run(go())


def _run_tui(plan: Any, testbed: Any, options: RunOptions) -> int:
    """The run in the TUI; once the app has closed, the verdict stays on the terminal."""
    from connreset import events as ev
    from connreset.engine.results import RunResult
    from connreset.runs import run
    from connreset.tui import RunApp
    from connreset.ui.console import verdict_table

    journal = Path(options.journal or "")

    async def runner(subscribers: Sequence[ev.Subscriber], abandon: asyncio.Event) -> RunResult:
        return await run(plan, testbed, options=options.but(subscribers=subscribers, abandon=abandon))

    app = RunApp(plan.phases, runner, title=plan.experiment.name, subtitle=testbed.name, handle_signals=True)
    app.run()
    ended = app.ended
    if ended is None:  # the app closed before the run ended (it crashed): undos ran in the worker
        print(f"connreset: the TUI stopped; see the journal {journal}", file=sys.stderr)
        return 3
    if ended.cancelled:
        if ended.result is None:
            print("interrupted before the run began; nothing was left changed", file=sys.stderr)
        else:
            print(_interrupted(ended.result, journal), file=sys.stderr)
        return 130
    if ended.result is None:
        print(f"connreset: {ended.error}", file=sys.stderr)
        return ended.exit_code
    print(verdict_table(ended.result))
    if ended.result.pending:
        print(_pending(ended.result.pending, journal), file=sys.stderr)
    return ended.result.exit_code


def _pending(pending: Sequence[str], journal: Path) -> str:
    lines = [f"{len(pending)} change(s) were not put back:"]
    lines += [f"  {p}" for p in pending]
    lines.append(f"put them back with: connreset restore {journal}")
    return "\n".join(lines)


def _interrupted(result: Any, journal: Path) -> str:
    if result.pending:
        return "interrupted: " + _pending(result.pending, journal)
    failed = [u for u in result.undo if not u.verified]
    if failed:
        return f"interrupted: {len(failed)} undo(s) failed; see {journal}"
    return f"interrupted: {len(result.undo)} change(s) put back and verified; journal: {journal}"


async def _dry_run(plan: Any, testbed: Any) -> int:
    from connreset.ui.console import plan_lines

    print(
        f"plan for {plan.experiment.name} on {testbed.name} "
        f"({', '.join(f'{k}={v}' for k, v in redact(plan.params).items()) or 'no parameters'}); "
        "nothing will be changed"
    )
    for line in testbed.plan_run("dry-run"):
        print(line)
    phases = []
    for phase in plan.phases:
        steps = []
        for flat in phase.steps:
            marker = "*" if flat.step.mutating else " "
            steps.append((f"{marker} {flat.name}", await flat.step.plan(testbed)))
        phases.append((phase.name, steps))
    text = plan_lines(phases)
    print(text)
    print("(* changes something; every change is undone at the end of a run)")
    if " ? → " in text:
        print(
            "(? a current value not read: a dry run opens nothing, so what only the open testbed can "
            "read is unknown; a run reads each value and journals it before changing it)"
        )
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from connreset.runs import make_testbed
    from connreset.sweep import SweepCancelled, TrialError, check_trials, load_sweep, run_sweep
    from connreset.sweep.outline import outline, sweep_dry_run
    from connreset.sweep.runner import DATABASE
    from connreset.ui.console import ConsoleProgress, sweep_stopped, trial_error

    spec, file_options = load_sweep(args.file)
    if args.repeats is not None:
        spec = spec.with_repeats(args.repeats)
    if not isinstance(file_options, dict) or not all(isinstance(v, dict) for v in file_options.values()):
        raise ValidationError(
            "cluster_options must be a dict of dicts: {cluster name: {option: value}}", file=str(args.file)
        )
    options = {k: str(v) for k, v in (file_options.get(args.cluster) or {}).items()}
    testbed = make_testbed(_spec(args, options))
    check_trials(spec, testbed, args.file)
    out = args.out or DATABASE / spec.name / "results"
    _writable_dir(out, "--out")
    outlined = outline(
        spec, time_budget=args.time_budget, max_trials=args.max_trials, confirm=not args.no_confirm
    )
    if args.dry_run:
        print("\n".join(sweep_dry_run(spec, outlined, testbed.name, out)))
        return 0
    if _wants_tui(args):
        return _sweep_tui(args, spec, testbed, out, outlined.words)

    async def go() -> int:
        abandon = two_stage_interrupt("interrupted: undoing the trial in flight (again to stop waiting)")
        print(f"sweep {spec.name}: {outlined.lines[0]}", *outlined.lines[1:], sep="\n", flush=True)
        print(
            f"{spec.vary} over {spec.space[0]}…{spec.space[-1]} "
            f"({len(spec.space)} values) for {len(spec.workloads)} workload(s) on {testbed.name}",
            flush=True,
        )
        print(  # a sweep killed with -9 prints nothing more: where its trials' journals are
            f"trial journals: {out / 'journals'} (if the sweep is killed: connreset restore the newest)",
            flush=True,
        )
        try:
            result = await run_sweep(
                spec,
                testbed,
                out=out,
                seed=args.seed,
                max_trials=args.max_trials,
                time_budget=args.time_budget,
                confirm=not args.no_confirm,
                subscribers=[progress(args, ConsoleProgress(verbose=args.verbose, runs=args.verbose > 0))],
                abandon=abandon,
                watchdog_lease=args.watchdog_lease,
            )
        except TrialError as exc:
            print(f"connreset: {trial_error(exc)}", file=sys.stderr)
            return 3
        except SweepCancelled as exc:
            print(_stopped(sweep_stopped(exc.result, exc.trial, exc.written, exc.error)), file=sys.stderr)
            return 130
        except asyncio.CancelledError:  # while the testbed was opening
            print("interrupted before the sweep began; nothing was left changed", file=sys.stderr)
            return 130
        print()
        return _sweep_done(spec, result, out)

    return asyncio.run(go())


def _sweep_tui(args: argparse.Namespace, spec: Any, testbed: Any, out: Path, at_most: str) -> int:
    """The sweep in the TUI; once the app has closed, the summary stays on the terminal."""
    from connreset import events as ev
    from connreset.sweep import SweepResult, run_sweep
    from connreset.tui import SweepApp
    from connreset.ui.console import sweep_stopped

    async def runner(subscribers: Sequence[ev.Subscriber], abandon: asyncio.Event) -> SweepResult:
        return await run_sweep(
            spec,
            testbed,
            out=out,
            seed=args.seed,
            max_trials=args.max_trials,
            time_budget=args.time_budget,
            confirm=not args.no_confirm,
            subscribers=subscribers,
            abandon=abandon,
            watchdog_lease=args.watchdog_lease,
        )

    app = SweepApp(spec, runner, subtitle=f"{testbed.name}: {at_most}", handle_signals=True)
    app.run()
    ended = app.ended
    if ended is None:  # the app closed before the sweep ended (it crashed): the trial was undone
        print(f"connreset: the TUI stopped; see the trials' journals in {out / 'journals'}", file=sys.stderr)
        return 3
    if ended.cancelled:
        if ended.result is None:
            print("interrupted before the sweep began; nothing was left changed", file=sys.stderr)
        else:
            lines = sweep_stopped(ended.result, ended.trial, ended.written, ended.write_error)
            print(_stopped(lines), file=sys.stderr)
        return 130
    if ended.result is None:
        print(f"connreset: {ended.error}", file=sys.stderr)
        return ended.exit_code
    return _sweep_done(spec, ended.result, out)


def _sweep_done(spec: Any, result: Any, out: Path) -> int:
    """The summary and where the results are; the exit code."""
    from connreset.sweep import summary

    print(summary(spec, result))
    print(f"results: {out / 'results.json'}, {out / 'plot.png'}, {out / 'plot.svg'}")
    return int(result.exit_code)


def _stopped(lines: Sequence[str]) -> str:
    return "interrupted: " + "\n".join(lines)


def _writable_dir(path: Path, option: str) -> None:
    """Refuse a directory that cannot be made or written, before anything runs (makes nothing)."""
    existing = path
    try:
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise ValidationError(f"{option} {path}: {existing} is not a directory")
    except OSError as exc:
        raise ValidationError(f"{option} {path}: {exc.strerror or exc}") from None
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValidationError(f"{option} {path}: {existing} is not writable")


def _restore(args: argparse.Namespace) -> int:
    from connreset.runs.restore import restore
    from connreset.ui import standing

    if args.journal is not None and args.journal.is_file():
        routed = standing.restore_journal(args.journal)  # a run in a standing guest: in that guest
        if routed is not None:
            return routed

    async def go() -> tuple[list[str], bool]:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        return await restore(
            args.journal,
            args.cluster,
            args.node_access,
            dict(args.cluster_opt),
            dict(args.node_opt),
            undo_timeout=args.undo_timeout,
        )

    try:
        lines, ok = asyncio.run(go())
    except (asyncio.CancelledError, KeyboardInterrupt):
        again = f"`connreset restore {args.journal}` again" if args.journal else "`connreset lab down`"
        print(
            "interrupted: restore stopped; the run's watchdog, if armed, puts back the rest when its "
            f"lease ends, or run {again}",
            file=sys.stderr,
        )
        return 130
    for line in lines:
        print(line)
    return 0 if ok else 3


def _report(args: argparse.Namespace) -> int:
    from connreset.ui.report import report

    try:
        print(report(args.journal, args.html))
    except OSError as exc:
        print(f"connreset: cannot write {args.html}: {exc.strerror or exc}", file=sys.stderr)
        return 3
    if args.html:
        print(f"\nHTML report: {args.html}", file=sys.stderr)
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from connreset.runs.journal import default_path
    from connreset.ui.doctor import main as doctor_main

    journal = args.journal or default_path("doctor")
    return doctor_main(args, _spec(args, {}), journal, _wants_tui(args))


def _plugins(name: str | None) -> int:
    from connreset.testbed.registry import GROUPS, available

    if name is not None:
        return _plugin_options(name)
    for group, what in GROUPS.items():
        print(f"{group} ({what}):")
        for name, ep in sorted(available(group).items()):
            dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "?"
            print(f"  {name:<16} {ep.value:<45} from {dist}")
    return 0


def _plugin_options(name: str) -> int:
    """The options of every plugin called ``name`` (a backend and a node access may share one)."""
    from connreset.testbed import options as opts
    from connreset.testbed.registry import GROUPS, available, options_of

    found = [group for group in GROUPS if name in available(group) or ":" in name]
    if not found:
        known = sorted({n for group in GROUPS for n in available(group)})
        raise ValidationError(f"no plugin {name!r} (installed: {', '.join(known)})")
    for group in found:
        declared = options_of(group, name)
        print(f"{GROUPS[group]} {name}:")
        if declared is None:
            print("  (a plain factory: it declares no options class)")
            continue
        rows = opts.describe(declared)
        if not rows:
            print("  no options")
        for o in rows:
            default = "required" if o.default is None else f"default {o.default or '(empty)'}"
            secret = ", secret" if o.secret else ""
            print(f"  {o.name}={o.type}  ({default}{secret})")
            if o.help:
                print(f"      {o.help}")
    return 0


def _in_guest(args: argparse.Namespace, argv: list[str]) -> int:
    """A command with ``--kernel``: in a guest of that kernel (a standing one, if it is up)."""
    from connreset.ui import kernels, standing

    if args.command == "run":
        return kernels.in_guest(args, argv)
    if args.command == "sweep":
        return kernels.sweep_kernels(args, argv)
    if args.command == "doctor":
        return kernels.doctor_in_guest(args, argv)
    if args.command == "restore":
        return standing.restore(args, kernels.strip(argv, kernels.OWN))
    if args.command == "lab":
        return standing.lab(args, kernels.strip(argv, kernels.OWN), kernels.options_of(args))
    raise ValidationError(f"`{args.command}` takes no --kernel")


def _lab(args: argparse.Namespace) -> int:
    from connreset.lab import control
    from connreset.ui import standing

    if args.action == "up":
        opts = dict(args.cluster_opt)
        unknown = sorted(set(opts) - {"proxy"})
        if unknown:
            raise ValidationError(f"lab up takes --cluster-opt proxy=MODE only, not {', '.join(unknown)}")
        print(control.up(nodes=args.nodes, **opts))
    elif args.action == "down":
        print(control.down())
        if not args.only_host:
            for line in standing.end_every():
                print(line)
    else:
        print(control.status())
        for line in standing.host_status():
            print(line)
    return 0
