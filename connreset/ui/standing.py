"""The command line's standing guests: ``lab up|status|down --kernel K``, and running a command in
the standing guest of its ``--kernel`` instead of booting one (see :mod:`connreset.guest.keeper`).

A command in a standing guest runs from a directory of its own under the guest's one writable host
directory; the files it writes there (its journal, a sweep's results and example database) are
moved to where the caller asked when it ends.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from connreset.errors import ValidationError


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _err(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


def find(kernel: Any) -> Any:
    """The standing guest of ``kernel``, or None (never inside a guest: its cache is the host's)."""
    from connreset.guest import keeper, timing

    return None if timing.environment() else keeper.find(kernel)


def workdir(s: Any) -> Path:
    """A directory of its own for one command, under the standing guest's writable directory."""
    d: Path = s.work / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    d.mkdir(mode=0o700)
    return d


def absolute(argv: Sequence[str], file: Path) -> list[str]:
    """``argv`` with its first word naming ``file`` made absolute (the command runs elsewhere)."""
    out = list(argv)
    for i, word in enumerate(out):
        if word == str(file):
            out[i] = str(file.absolute())
            break
    return out


def ask(
    s: Any,
    argv: Sequence[str],
    cwd: Path,
    on_out: Callable[[str], None] = _out,
    on_err: Callable[[str], None] = _err,
) -> int:
    """Run ``connreset ARGV`` in the standing guest ``s``; Ctrl-C reaches the command there."""
    from connreset.guest import keeper

    about = s.about()
    accel = str(about.get("accel", "?")).upper()
    _say(f"guest: the standing guest of {about.get('label', s.release)} ({accel}); no boot")
    return asyncio.run(keeper.request(s, argv, cwd=cwd, on_out=on_out, on_err=on_err, handle_signals=True))


def move(source: Path, to: Path) -> None:
    """``source`` (a file or a directory) to ``to``; a directory's contents merge into ``to``."""
    if not source.exists():
        return
    to.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, to, dirs_exist_ok=True)
        shutil.rmtree(source)
    else:
        shutil.move(source, to)


def _relayed(s: Any, kernel: Any, argv: Sequence[str], cwd: Path, view: Any) -> int:
    """``connreset ARGV`` in ``s``, shown by ``view`` as a guest run is (see connreset.ui.relay)."""
    from connreset.guest.vm import GuestOptions
    from connreset.ui import relay

    command = relay.GuestCommand(kernel, GuestOptions(), (), tuple(argv), standing=s, cwd=cwd)
    return relay.show(command, view, None)


def run_with_journal(
    s: Any, kernel: Any, inner: Sequence[str], file: Path | None, journal: Path, view: Any = None
) -> int:
    """``inner`` (its journal option not yet given) in ``s``, the journal moved to ``journal``."""
    here = workdir(s)
    argv = absolute(inner, file) if file is not None else list(inner)
    code = _relayed(s, kernel, [*argv, "--journal", str(here / "journal.json")], here, view)
    move(here / "journal.json", journal)
    shutil.rmtree(here, ignore_errors=True)
    _say(f"guest: exit {code}; journal: {journal}" if journal.exists() else f"guest: exit {code}")
    return code


def sweep_in(
    s: Any, kernel: Any, inner: Sequence[str], file: Path, out: Path, database: Path, view: Any = None
) -> int:
    """A sweep in ``s``: its results moved to ``out``, its example database merged into ``database``."""
    here = workdir(s)
    if database.is_dir():  # what earlier sweeps learnt, for hypothesis to replay
        shutil.copytree(database, here / database)
    code = _relayed(s, kernel, [*absolute(inner, file), "--out", str(here / "results")], here, view)
    move(here / "results", out)
    move(here / database, database.absolute())
    shutil.rmtree(here, ignore_errors=True)
    return code


# -- lab up | status | down --kernel K -------------------------------------------------------


def lab(args: argparse.Namespace, inner: Sequence[str], options: Any) -> int:
    """``lab ACTION --kernel K``: ``inner`` is the command line without the guest's options."""
    from connreset.guest import keeper, kernels

    kernel = kernels.resolve(args.kernel)
    s = find(kernel)
    if args.action == "status":
        if s is None:
            print(f"guest {kernel.release}: no standing guest (`lab up --kernel {args.kernel}` starts one)")
            return 0
        return ask(s, inner, s.work)
    if args.action == "down":
        if s is None:
            for line in keeper.forget_stale():
                print(line)
            print(f"guest {kernel.release}: no standing guest is up")
            return 0
        code = ask(s, inner, s.work)
        keeper.shutdown(s)
        print(f"guest {kernel.release}: powered off; nothing of it is left on this host")
        return code
    started = s is None
    if s is None:
        from connreset.guest import vm

        accel = asyncio.run(vm.choose_accel(kernel, options, _say))
        try:
            s = keeper.start(kernel, options, accel, _say)
        except KeyboardInterrupt:
            _say(f"interrupted: the guest of {kernel.release} was powered off before it was up")
            return 130
    code = ask(s, inner, s.work)
    if code != 0 and started:
        keeper.shutdown(s)
        return code
    print(
        f"guest {kernel.release}: the lab stays up in a standing guest (keeper pid {s.keeper_pid()}). "
        f"Commands with --kernel {args.kernel} run in it without a boot; "
        f"`connreset lab down --kernel {args.kernel}` (or `connreset lab down`) powers it off."
    )
    return code


def host_status() -> list[str]:
    """Lines for ``lab status`` on the host: each standing guest."""
    from connreset.guest import keeper

    lines = []
    for s in keeper.every():
        about = s.about()
        lines.append(
            f"standing guest {about.get('label', s.release)}: {str(about.get('accel', '?')).upper()}, "
            f"up since {about.get('since', '?')}, keeper pid {s.keeper_pid()}"
        )
    return lines


def end_every() -> list[str]:
    """For ``lab down`` on the host: power every standing guest off."""
    from connreset.guest import keeper, timing

    if timing.environment():
        return []
    said = []
    for s in keeper.every():
        keeper.shutdown(s)
        said.append(f"standing guest {s.release}: powered off")
    return said + keeper.forget_stale()


def restore(args: argparse.Namespace, inner: Sequence[str]) -> int:
    """``restore --kernel K [JOURNAL]``: in the standing guest of K, if one is up (``inner``: the
    command line without ``--kernel``)."""
    from connreset.guest import kernels

    kernel = kernels.resolve(args.kernel)
    s = find(kernel)
    if s is None:
        print(
            f"guest {kernel.release}: no standing guest is up, so nothing of a run in one is left: a "
            "guest's changes live and die in its own kernel"
        )
        return 0
    if args.journal is not None:
        inner = absolute(inner, args.journal)
    return ask(s, inner, s.work)


def restore_journal(journal: Path) -> int | None:
    """``restore JOURNAL`` of a run in a standing guest that is still up: done in that guest.
    None when the journal is not such a run's (the host's ``restore`` handles it)."""
    from connreset.runs.journal import read

    env = read(journal).get("environment")
    s = find_release(env) if isinstance(env, dict) and env.get("guest_standing") == "yes" else None
    if s is None:
        return None
    return ask(s, ["restore", str(journal.absolute())], s.work)


def find_release(env: dict[str, Any]) -> Any:
    from connreset.guest import keeper, timing

    if timing.environment() or not env.get("guest_kernel"):
        return None
    s = keeper.Standing(keeper.guests_dir() / str(env["guest_kernel"]))
    return s if s.serving() else None


def check_kernel_cluster(args: argparse.Namespace) -> None:
    if getattr(args, "cluster", "lab") not in (None, "lab"):
        raise ValidationError(
            f"--kernel runs the embedded lab in a guest; it does not apply to --cluster {args.cluster}"
        )
