"""The command line: argument parsing and console output only.

Exit codes: 0 every expectation held; 1 an expectation failed; 2 invalid input;
3 infrastructure error; 130 interrupted (after undoing).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from connreset import __version__
from connreset.errors import ConnresetError, ValidationError

COMMANDS = ("run", "restore", "plugins", "lab")


def _kv(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="connreset",
        description="Declarative experiments for Kubernetes connection resets (kubernetes#74839).",
        epilog="`connreset FILE.py` is short for `connreset run FILE.py`. "
        "Exit codes: 0 passed, 1 an expectation failed, 2 invalid input, 3 infrastructure error.",
    )
    p.add_argument("--version", action="version", version=f"connreset {__version__}")
    p.add_argument("--log-format", choices=("console", "json"), help="default: console on a TTY")
    p.add_argument("-v", "--verbose", action="count", default=0)
    sub = p.add_subparsers(dest="command")

    r = sub.add_parser("run", help="run an experiment file (the default command)")
    r.add_argument("file", type=Path)
    r.add_argument(
        "--set",
        dest="sets",
        action="append",
        type=_kv,
        default=[],
        metavar="K=V",
        help="set an experiment parameter (repeatable)",
    )
    r.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    r.add_argument("--backend", default=None, help="backend name or module:factory (default: lab)")
    r.add_argument(
        "--backend-opt",
        action="append",
        type=_kv,
        default=[],
        metavar="K=V",
        help="an option for the backend factory (repeatable), e.g. nodes=3",
    )
    r.add_argument("--journal", type=Path, help="journal path (default: .connreset/runs/...)")
    r.add_argument("--no-tui", action="store_true", help="plain console output (the default for now)")
    r.add_argument(
        "--step-timeout", type=float, default=None, help="seconds per step, unless it sets its own"
    )

    s = sub.add_parser("restore", help="put back what an interrupted run changed")
    s.add_argument("journal", type=Path, nargs="?", help="journal to restore from (default: the lab's state)")
    s.add_argument("--backend", default=None, help="backend to restore on (default: the journal's)")
    s.add_argument("--backend-opt", action="append", type=_kv, default=[], metavar="K=V")

    sub.add_parser("plugins", help="list installed backends")

    lab = sub.add_parser("lab", help="the embedded lab: up, down, status")
    lab.add_argument("action", choices=("up", "down", "status"))
    lab.add_argument("--nodes", type=int, default=2)
    for sp in (r, s, lab):
        sp.add_argument("--log-format", choices=("console", "json"), default=argparse.SUPPRESS)
        sp.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in args_list if not a.startswith("-")), None)
    if first is not None and first not in COMMANDS:
        args_list.insert(args_list.index(first), "run")
    p = parser()
    args = p.parse_args(args_list)
    from connreset.logs import configure

    configure(args.log_format, args.verbose)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "restore":
            return _restore(args)
        if args.command == "plugins":
            return _plugins()
        if args.command == "lab":
            return _lab(args)
        p.print_help()
        return 2
    except ConnresetError as exc:
        print(f"connreset: {exc}", file=sys.stderr)
        return exc.exit_code


def _backend(args: argparse.Namespace, module_opts: dict[str, Any]) -> Any:
    from connreset.backends.registry import load

    factory = load(args.backend or "lab")
    options = {**module_opts, **dict(args.backend_opt)}
    try:
        return factory(**options)
    except TypeError as exc:
        raise ValidationError(f"backend options {options}: {exc}") from None


def _run(args: argparse.Namespace) -> int:
    from connreset import loader

    loaded = loader.load(args.file, raw=dict(args.sets))
    backend = _backend(args, dict(loaded.backend_options) if args.backend in (None, "lab") else {})
    from connreset.experiment import check_backend

    try:
        check_backend(loaded.phases, backend.capabilities, backend.name, backend.node_names())
    except ValidationError as exc:
        raise exc.located(str(args.file)) from None
    if args.dry_run:
        return asyncio.run(_dry_run(loaded, backend))
    from connreset.console import ConsoleProgress, verdict_table
    from connreset.engine.runner import run
    from connreset.journal import default_path

    journal = args.journal or default_path(loaded.experiment.name)

    async def go() -> int:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            result = await run(
                loaded,
                backend,
                journal=journal,
                subscribers=[ConsoleProgress(verbose=args.verbose)],
                step_timeout=args.step_timeout,
            )
        except asyncio.CancelledError:
            print(f"interrupted: changes were put back; journal: {journal}", file=sys.stderr)
            return 130
        print()
        print(verdict_table(result))
        return result.exit_code

    return asyncio.run(go())


async def _dry_run(loaded: Any, backend: Any) -> int:
    from connreset.console import plan_lines

    print(
        f"plan for {loaded.experiment.name} on {backend.name} "
        f"({', '.join(f'{k}={v}' for k, v in loaded.params.items()) or 'no parameters'}); "
        "nothing will be changed"
    )
    phases = []
    for phase in loaded.phases:
        steps = []
        for flat in phase.steps:
            marker = "*" if flat.step.mutating else " "
            steps.append((f"{marker} {flat.name}", await flat.step.plan(backend)))
        phases.append((phase.name, steps))
    print(plan_lines(phases))
    print("(* changes something; every change is undone at the end of a run)")
    return 0


def _restore(args: argparse.Namespace) -> int:
    from connreset.restore import restore

    for line in asyncio.run(restore(args.journal, args.backend, dict(args.backend_opt))):
        print(line)
    return 0


def _plugins() -> int:
    from connreset.backends.registry import GROUPS, available

    for group in GROUPS:
        print(f"{group}:")
        for name, ep in sorted(available(group).items()):
            print(f"  {name:<16} {ep.value}")
    return 0


def _lab(args: argparse.Namespace) -> int:
    from connreset.lab import control

    if args.action == "up":
        print(control.up(nodes=args.nodes))
    elif args.action == "down":
        print(control.down())
    else:
        print(control.status())
    return 0
