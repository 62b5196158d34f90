"""The command line's guest parts: ``connreset kernels list|fetch`` and ``--kernel`` on run and sweep.

``run FILE --kernel K …`` validates the experiment on the host, boots a guest of kernel K and
runs the same command line inside it (``--no-tui --emit-events``, the journal in a host directory
the guest may write). Its events come back live (:mod:`connreset.ui.relay`) to the same TUI or
console lines as a host run's. ``sweep FILE --kernel 5.10,6.1,host`` runs the sweep under each
kernel in turn, each in ``OUT/KERNEL/`` and each shown as a host sweep is, then writes one
``OUT/results.json`` with every kernel's boundaries and a table per kernel.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from connreset import events as ev
from connreset.errors import ValidationError
from connreset.ui import standing

#: The options this module adds to ``run`` and ``sweep`` (each takes a value, but the flag).
OWN = {
    "--kernel": True,
    "--guest-memory": True,
    "--guest-cpus": True,
    "--accel": True,
    "--guest-console": False,
}


def _cpus(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def guest_args(p: argparse.ArgumentParser, *, several: bool = False) -> None:
    """``--kernel`` and the guest's options, on ``run`` (one kernel) or ``sweep`` (a list)."""
    p.add_argument(
        "--kernel",
        default=None,
        metavar="K[,K…]" if several else "K",
        help="run in a QEMU guest of this kernel: 5.10, 6.1, 6.12, a cached release or package, or a "
        "path to a vmlinuz (see `connreset kernels`)"
        + (
            "; a comma-separated list, `host` for this machine's, runs the sweep under each"
            if several
            else ""
        ),
    )
    p.add_argument("--guest-memory", default="2G", metavar="SIZE", help="the guest's memory (default 2G)")
    p.add_argument("--guest-cpus", type=_cpus, default=2, metavar="N", help="the guest's CPUs (default 2)")
    p.add_argument(
        "--accel",
        default="auto",
        help="kvm, tcg, or auto (default: KVM where a test boot of the kernel works, else TCG)",
    )
    p.add_argument(
        "--guest-console",
        action="store_true",
        help="show the guest kernel's console (for a guest that fails)",
    )
    # the run in a guest: its events as wire lines on stdout, for the host (connreset.ui.relay)
    p.add_argument("--emit-events", action="store_true", help=argparse.SUPPRESS)


def progress(args: argparse.Namespace, console: ev.Subscriber) -> ev.Subscriber:
    """The run's event subscriber for people: ``console``, or in a guest the wire to the host."""
    if getattr(args, "emit_events", False):
        from connreset.runs.wire import Emitter

        return Emitter()
    return console


def _wants_tui(args: argparse.Namespace) -> bool:
    return bool(args.tui if args.tui is not None else sys.stdout.isatty())


def kernels_parser(sub: Any) -> argparse.ArgumentParser:
    k: argparse.ArgumentParser = sub.add_parser(
        "kernels", help="kernels for --kernel: list what is cached, fetch Debian's"
    )
    k.add_argument("action", choices=("list", "fetch", "remove"))
    k.add_argument("names", nargs="*", help="for fetch/remove: 5.10, 6.1, 6.12 or a linux-image-… package")
    k.add_argument("--refresh", action="store_true", help="fetch again even if cached")
    return k


def kernels_main(args: argparse.Namespace) -> int:
    from connreset.guest import kernels

    if args.action == "list":
        print(_listing(kernels.cached()))
        return 0
    if not args.names:
        raise ValidationError(f"kernels {args.action}: name at least one kernel (e.g. 5.10)")
    if args.action == "remove":
        found = [(n, kernels.find(n)) for n in args.names]
        missing = [n for n, k in found if k is None]
        if missing:
            raise ValidationError(f"kernels remove: not cached: {', '.join(missing)}")
        for _, k in found:
            assert k is not None
            kernels.remove(k)
            print(f"removed {k.label}")
        return 0
    for name in args.names:
        kernels.check_word(name)
    for name in args.names:
        print(f"fetching {name} through apt (a private sources list; nothing is installed)…", flush=True)
        k = kernels.fetch(name, refresh=args.refresh)
        print(f"{name}: {k.label}, sha256 {k.sha256[:16]}…, in {k.modules.parent}")
    return 0


def _listing(have: Sequence[Any]) -> str:
    from connreset.guest import kernels

    lines = [f"cache: {kernels.kernels_dir()}"]
    if have:
        lines.append(f"{'ALIAS':<6} {'RELEASE':<24} {'PACKAGE VERSION':<22} SHA256")
        lines += [f"{k.alias or '-':<6} {k.release:<24} {k.version:<22} {k.sha256[:16]}…" for k in have]
    else:
        lines.append("nothing cached yet")
    cached = {k.alias for k in have}
    fetchable = [f"{a.name} ({a.about})" for a in kernels.ALIASES.values() if a.name not in cached]
    if fetchable:
        lines.append("can be fetched (`connreset kernels fetch NAME`): " + "; ".join(fetchable))
    lines.append("or any linux-image-…-amd64 package of bullseye or bookworm, or --kernel PATH/TO/vmlinuz")
    return "\n".join(lines)


def strip(argv: Sequence[str], drop: dict[str, bool]) -> list[str]:
    """``argv`` without the options in ``drop`` (name → takes a value), in any spelling argparse
    accepts: ``--opt V``, ``--opt=V``, or a unique prefix of ``--opt``."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        name, eq, _ = word.partition("=")
        hit = next((o for o in drop if name.startswith("--") and len(name) > 3 and o.startswith(name)), None)
        if hit is None:
            out.append(word)
            i += 1
        else:
            i += 1 if eq or not drop[hit] else 2
    return out


def options_of(args: argparse.Namespace) -> Any:
    from connreset.guest.vm import GuestOptions

    return GuestOptions(memory=args.guest_memory, cpus=args.guest_cpus, accel=args.accel)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def in_guest(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``run … --kernel K``: check on the host, then run the same command in a guest, shown here
    as a host run is (the TUI when stdout is a terminal or ``--tui``, else plain lines)."""
    from connreset.experiment import loader
    from connreset.guest import kernels
    from connreset.runs.journal import check_path, default_path

    if "," in args.kernel:
        raise ValidationError(f"--kernel {args.kernel}: `run` takes one kernel (a sweep takes several)")
    kernel = kernels.resolve(args.kernel)
    options = options_of(args)
    plan = loader.load(args.file, raw=dict(args.sets))
    journal = Path(args.journal or default_path(plan.experiment.name)).absolute()
    check_path(journal, given=args.journal is not None)
    inner = [*strip(argv, {**OWN, "--journal": True, "--tui": False, "--no-tui": False}), "--no-tui"]
    view = _run_view(args, plan)
    standing_guest = standing.find(kernel)
    if standing_guest is not None:
        return standing.run_with_journal(standing_guest, kernel, inner, args.file, journal, view)
    inner += ["--journal", str(journal)]
    return _boot_and_run(kernel, options, [journal.parent], args.guest_console, journal, inner, view)


def _run_view(args: argparse.Namespace, plan: Any) -> Any:
    from connreset.ui import relay
    from connreset.ui.console import ConsoleProgress

    if _wants_tui(args):
        return relay.RunView(tuple(plan.phases), plan.experiment.name)
    return ConsoleProgress(verbose=args.verbose)


def _sweep_view(args: argparse.Namespace, spec: Any, out: Path) -> Any:
    from connreset.ui import relay
    from connreset.ui.console import ConsoleProgress

    if _wants_tui(args):
        return relay.SweepView(spec, out)
    return ConsoleProgress(verbose=args.verbose, runs=args.verbose > 0)


def doctor_in_guest(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``doctor --kernel K``: the doctor's read-only checks of the lab up in the standing guest of K."""
    from connreset.guest import kernels
    from connreset.runs.journal import check_path, default_path

    standing.check_kernel_cluster(args)
    if "," in args.kernel:
        raise ValidationError(f"--kernel {args.kernel}: `doctor` takes one kernel")
    kernel = kernels.resolve(args.kernel)
    journal = Path(args.journal or default_path("doctor")).absolute()
    check_path(journal, given=args.journal is not None)
    inner = [*strip(argv, {**OWN, "--journal": True, "--tui": False, "--no-tui": False}), "--no-tui"]
    standing_guest = standing.find(kernel)
    if standing_guest is None:  # as on the host, the doctor reads a lab that is up; it makes none
        raise ValidationError(
            f"doctor --kernel {args.kernel}: no lab is up in a guest of {kernel.release}; start one with "
            f"`connreset lab up --kernel {args.kernel}`, then run the doctor"
        )
    return standing.run_with_journal(standing_guest, kernel, inner, None, journal)


def _boot_and_run(
    kernel: Any,
    options: Any,
    rwdirs: list[Path],
    console: bool,
    journal: Path | None,
    inner: list[str],
    view: Any = None,
) -> int:
    """``connreset INNER`` in a guest; ``view`` shows its events (see :func:`connreset.ui.relay.show`)."""
    import attrs

    from connreset.ui import relay

    options = attrs.evolve(options, console=console)
    return relay.show(relay.GuestCommand(kernel, options, tuple(rwdirs), tuple(inner)), view, journal)


# -- sweeps under several kernels ---------------------------------------------------------------


def sweep_kernels(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``sweep FILE --kernel 5.10,6.1,host``: the sweep under each kernel, one results file."""
    from connreset.guest import kernels
    from connreset.sweep import load_sweep
    from connreset.sweep.runner import DATABASE

    names = [n.strip() for n in args.kernel.split(",") if n.strip()]
    if not names or len(set(names)) != len(names):
        raise ValidationError(f"--kernel {args.kernel}: expected distinct kernels, e.g. 5.10,6.1,host")
    resolved = {n: (None if n == "host" else kernels.resolve(n)) for n in names}
    spec, _ = load_sweep(args.file)
    out = Path(args.out or DATABASE / spec.name / "results").absolute()
    base = strip(argv, {**OWN, "--out": True, "--tui": False, "--no-tui": False})
    options = options_of(args)
    codes: dict[str, int] = {}
    for name, kernel in resolved.items():
        sub = out / _dirname(name)
        inner = [*base, "--no-tui", "--out", str(sub)]
        _say(f"── kernel {name}")
        standing_guest = None if kernel is None else standing.find(kernel)
        if kernel is None:
            shown = [*inner, "--tui"] if _wants_tui(args) else inner  # this machine's: shown as any sweep
            codes[name] = subprocess.run([sys.executable, "-m", "connreset", *shown], check=False).returncode
        elif standing_guest is not None:
            view = _sweep_view(args, spec, sub)
            inner = [*base, "--no-tui"]
            codes[name] = standing.sweep_in(
                standing_guest, kernel, inner, args.file, sub, DATABASE / spec.name, view
            )
        else:
            # the sweep's example database (hypothesis) must be writable too: cwd is read-only there
            examples = (DATABASE / spec.name).absolute()
            rw = [sub] if sub.is_relative_to(examples) else [sub, examples]
            view = _sweep_view(args, spec, sub)
            codes[name] = _boot_and_run(kernel, options, rw, args.guest_console, None, inner, view)
        if codes[name] == 130:
            break
    path = combine(out, names)
    print(f"results for {len(codes)} kernel(s): {path}")
    return max(codes.values(), default=0) if all(c in (0, 1) for c in codes.values()) else 3


def _dirname(name: str) -> str:
    return "kernel-" + "".join(c if c.isalnum() or c in ".-_" else "_" for c in Path(name).name)


def combine(out: Path, names: Sequence[str]) -> Path:
    """``OUT/results.json``: each kernel's results (its environment, boundaries, trials), and
    ``OUT/kernels.md``: a table per kernel."""
    found: dict[str, Any] = {}
    md = ["# Sweep results per kernel", ""]
    for name in names:
        path = out / _dirname(name) / "results.json"
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            found[name] = {"error": f"no results: {exc}"}
            md += [f"## {name}", "", f"no results ({exc})", ""]
            continue
        doc["kernel"] = _kernel_of(out / _dirname(name)) or name
        found[name] = doc
        md += [
            f"## {name}: {doc['kernel']}",
            "",
            "| workload | last failing | first holding | trials | confidence |",
        ]
        md.append("|---|---|---|---|---|")
        for b in doc.get("boundaries", []):
            w = ", ".join(f"{k}={v}" for k, v in b.get("workload", {}).items())
            confidence = str(b.get("confidence", "?")) + ("" if b.get("complete") else " (incomplete)")
            md.append(
                f"| {w} | {_cell(b.get('last_failing'))} | {_cell(b.get('first_holding'))} "
                f"| {b.get('trials')} | {confidence} |"
            )
        md += ["", *[f"- {r['line']}" for r in doc.get("recommendation", []) if "line" in r], ""]
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    path.write_text(json.dumps({"schema": 1, "kernels": found}, indent=1))
    (out / "kernels.md").write_text("\n".join(md))
    return path


def _cell(value: object) -> str:
    return "–" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def _kernel_of(sub: Path) -> str:
    """The kernel the trials ran on, from the first trial journal's environment."""
    for journal in sorted((sub / "journals").glob("*.json"))[:1]:
        try:
            from connreset.runs.journal import read

            env = read(journal).get("environment", {})
        except Exception:
            return ""
        return str(env.get("guest_kernel") or env.get("kernel") or "")
    return ""
