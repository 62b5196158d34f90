"""The host's end of a run (or a sweep) in a guest: its events on the host, live, for the console
or the TUI, as a host run's.

The run in the guest publishes its events on its stdout as :mod:`connreset.runs.wire` lines
(``--emit-events``, which the host adds to its command line) instead of its console lines, and
writes its journal where the host reads it. :class:`Feed` takes those lines from the guest's
stdout pump (``vm.boot(on_line=...)``), decodes them and emits them on a host
:class:`~connreset.events.EventBus`, which the console renderer or the TUI subscribes to exactly as
for a host run; the guest's other lines (its verdict table, its messages) are copied as they
come, or, under the TUI, shown in its event log and kept for the terminal once the app closes.
The TUI's ``q``/Ctrl-C becomes an interrupt for the run in the guest (``vm.boot(on_started=...)``),
a second one stops the guest's run waiting for its undos, as on the host.
"""

from __future__ import annotations

import asyncio
import io
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO

import attrs

from connreset import events as ev
from connreset._support.logs import get_logger
from connreset.runs.wire import PREFIX, WireError, decode

if TYPE_CHECKING:
    from connreset.experiment import PlannedPhase
    from connreset.guest.keeper import Standing
    from connreset.guest.kernels import Kernel
    from connreset.guest.vm import GuestOptions, GuestRun
    from connreset.sweep import Sweep
    from connreset.tui import Finished, RunApp, SweepApp

log = get_logger("connreset.guest")

#: The hidden option the host adds to the command line it runs in the guest.
EMIT = "--emit-events"

Stream = Literal["out", "err"]


def say(text: str) -> None:
    """A line of the host's own about the guest (on stderr; in the TUI, its event log)."""
    print(text, file=sys.stderr, flush=True)


class Feed:
    """The guest's event lines onto ``bus``; its interrupt for whoever stops the run.

    ``closing`` holds the guest's other lines since its last run began (its verdict table, how it
    stopped, a warning while it ran), with the stream each came on, when they are kept
    (:meth:`keeper`).
    """

    def __init__(self, bus: ev.EventBus | None = None) -> None:
        self.bus = bus or ev.EventBus()
        self.closing: list[tuple[Stream, str]] = []
        self.runs_started = 0
        self._interrupt: Callable[[], None] | None = None

    def line(self, text: str) -> bool:
        """For ``vm.boot(on_line=...)``: True if ``text`` was an event line, now emitted."""
        if not text.startswith(PREFIX):
            return False
        try:
            event = decode(text)
        except WireError as exc:  # copied as a plain line instead, so nothing is lost
            log.warning("an event line from the guest that does not decode", error=str(exc))
            return False
        if isinstance(event, ev.RunStarted):
            # what the guest said before (a sweep's trial before) is no longer its end; what it
            # says after the run's end may come on stderr before the end's event on stdout
            self.closing.clear()
            kernel = event.environment.get("guest_kernel")
            if kernel and not self.runs_started:  # once: a sweep's trials all run there
                accel = str(event.environment.get("guest_accel", "")).upper()
                say(f"guest: the run is on kernel {kernel} ({accel}); its events come live")
            self.runs_started += 1
        self.bus.emit(event)
        return True

    def started(self, interrupt: Callable[[], None]) -> None:
        """For ``vm.boot(on_started=...)``."""
        self._interrupt = interrupt

    def interrupt(self) -> bool:
        """An interrupt for the run in the guest (a Ctrl-C there); False before the guest runs."""
        if self._interrupt is None:
            return False
        self._interrupt()
        return True

    def keeper(self, stream: Stream) -> _Kept:
        """A stream for the guest's plain lines on ``stream`` that keeps them in ``closing`` and
        writes them where this process's stream goes now (the TUI's event log, while it runs)."""
        return _Kept(self, stream)

    def closing_text(self) -> str:
        return "\n".join(line for _, line in self.closing).strip("\n")

    def print_closing(self) -> None:
        """The kept lines, each on the terminal's stream it came on (once the TUI has closed)."""
        lines = list(self.closing)
        while lines and not lines[0][1].strip():
            lines.pop(0)
        for stream, line in lines:
            print(line, file=sys.stdout if stream == "out" else sys.stderr, flush=True)


class _Kept(io.StringIO):
    def __init__(self, feed: Feed, stream: Stream) -> None:
        super().__init__()
        self._feed = feed
        self._stream = stream

    def write(self, text: str) -> int:
        for line in text.splitlines():
            self._feed.closing.append((self._stream, line))
        target = sys.stdout if self._stream == "out" else sys.stderr
        target.write(text)
        return len(text)

    def flush(self) -> None:
        (sys.stdout if self._stream == "out" else sys.stderr).flush()


@attrs.frozen
class GuestCommand:
    """What to run where: ``connreset INNER`` in a guest of ``kernel``, ``rwdirs`` writable there;
    or, with ``standing``, in that standing guest (:mod:`connreset.guest.keeper`), from ``cwd``."""

    kernel: Kernel
    options: GuestOptions
    rwdirs: tuple[Path, ...]
    inner: tuple[str, ...]
    standing: Standing | None = None
    cwd: Path | None = None


async def boot_and_relay(
    command: GuestCommand, feed: Feed, *, handle_signals: bool, keep: bool = False
) -> GuestRun:
    """Boot the guest and run ``connreset INNER`` in it, its events onto ``feed``; ``keep``: keep
    its other lines (the TUI), else copy them to the terminal."""
    from connreset.guest import vm

    if command.standing is not None:
        return await _in_standing(command, command.standing, feed, handle_signals=handle_signals, keep=keep)
    kernel, options = command.kernel, command.options
    accel = await vm.choose_accel(kernel, options, say)
    say(f"guest: {kernel.label}, {accel.upper()}, {options.cpus} CPU(s), {options.memory}; booting…")

    def ready(boot_s: float, slowness: float) -> None:
        say(f"guest: up in {boot_s:.1f}s; slowness ×{slowness:g} (waits scaled by it)")

    return await vm.boot(
        kernel,
        command.inner,
        rwdirs=command.rwdirs,
        options=options,
        accel=accel,
        on_ready=ready,
        handle_signals=handle_signals,
        on_line=feed.line,
        on_started=feed.started,
        out=feed.keeper("out") if keep else None,
        err=feed.keeper("err") if keep else None,
    )


async def _in_standing(
    command: GuestCommand, standing: Standing, feed: Feed, *, handle_signals: bool, keep: bool
) -> GuestRun:
    """``connreset INNER`` in a standing guest: no boot; its lines relayed as a booted guest's."""
    from connreset.guest import keeper
    from connreset.guest.vm import GuestRun

    about = standing.about()
    accel = str(about.get("accel", "?"))
    say(f"guest: the standing guest of {about.get('label', standing.release)} ({accel.upper()}); no boot")
    out: TextIO = feed.keeper("out") if keep else sys.stdout
    err: TextIO = feed.keeper("err") if keep else sys.stderr

    def on_out(line: str) -> None:
        if not feed.line(line):
            out.write(line)
            out.flush()

    def on_err(line: str) -> None:
        err.write(line)
        err.flush()

    started = time.monotonic()
    code = await keeper.request(
        standing,
        command.inner,
        cwd=command.cwd or standing.work,
        on_out=on_out,
        on_err=on_err,
        handle_signals=handle_signals,
        on_started=feed.started,
    )
    slowness = about.get("slowness")
    return GuestRun(code, accel, None, float(slowness) if slowness else None, time.monotonic() - started)


def done(run: GuestRun, journal: Path | None) -> None:
    say(
        f"guest: done in {run.wall_s:.1f}s, exit {run.exit_code}"
        + (f"; journal: {journal}" if journal else "")
    )


def on_console(command: GuestCommand, progress: ev.Subscriber | None, journal: Path | None) -> int:
    """The run in the guest with plain lines: ``progress`` (the host's console renderer) gets its
    events; Ctrl-C and SIGTERM go to the run in the guest."""
    feed = Feed(ev.EventBus([progress] if progress else []))

    async def go() -> int:
        run = await boot_and_relay(command, feed, handle_signals=True)
        done(run, journal)
        return run.exit_code

    return asyncio.run(go())


class Relayed:
    """A TUI app's work, when it is a guest's: :meth:`runner` boots it, its events to the app's
    subscribers, ``abandon`` (the second ``q``) the second interrupt; :meth:`after` says, once the
    app has closed, what the guest said at its end."""

    def __init__(self, command: GuestCommand) -> None:
        self.command = command
        self.feed = Feed()
        self.runs: list[GuestRun] = []

    async def runner(self, subscribers: Sequence[ev.Subscriber], abandon: asyncio.Event) -> Finished:
        from connreset.tui import Finished

        for fn in subscribers:
            self.feed.bus.subscribe(fn)

        async def second() -> None:
            await abandon.wait()
            self.feed.interrupt()

        watcher = asyncio.create_task(second())
        try:
            guest = await boot_and_relay(self.command, self.feed, handle_signals=False, keep=True)
        finally:
            watcher.cancel()
        self.runs.append(guest)
        return Finished(guest.exit_code, self.feed.closing_text())

    def after(self, app: RunApp | SweepApp, journal: Path | None, what: str) -> int:
        """Once the app has closed: the guest's closing lines on the terminal; the exit code."""
        self.feed.print_closing()
        for guest in self.runs:
            done(guest, journal)
        ended = app.ended
        if ended is None:  # the app closed before the guest's run ended (it crashed): the guest was stopped
            print(f"connreset: the TUI stopped; see {what}", file=sys.stderr)
            return 3
        if ended.error:
            print(f"connreset: {ended.error}", file=sys.stderr)
        elif ended.cancelled and not self.runs:  # stopped before the guest ran (booting, waiting)
            print("interrupted before the run began; nothing was left changed", file=sys.stderr)
        return ended.exit_code


def run_app(command: GuestCommand, phases: Sequence[PlannedPhase], title: str) -> tuple[RunApp, Relayed]:
    """The run's TUI (a host run's), fed by the run in the guest."""
    from connreset.tui import RunApp

    relayed = Relayed(command)
    app = RunApp(
        phases,
        relayed.runner,
        title=title,
        subtitle=f"guest {command.kernel.release}",
        handle_signals=True,
        interrupt=relayed.feed.interrupt,
    )
    return app, relayed


def sweep_app(command: GuestCommand, spec: Sweep) -> tuple[SweepApp, Relayed]:
    """The sweep's TUI (a host sweep's), fed by the sweep in the guest."""
    from connreset.tui import SweepApp

    relayed = Relayed(command)
    app = SweepApp(
        spec,
        relayed.runner,
        subtitle=f"guest {command.kernel.release}",
        handle_signals=True,
        interrupt=relayed.feed.interrupt,
    )
    return app, relayed


@attrs.frozen
class RunView:
    """Show the guest's run in the run's TUI."""

    phases: tuple[PlannedPhase, ...]
    title: str


@attrs.frozen
class SweepView:
    """Show the guest's sweep in the sweep's TUI (its results in ``out``)."""

    spec: Sweep
    out: Path


def show(
    command: GuestCommand, view: RunView | SweepView | ev.Subscriber | None, journal: Path | None
) -> int:
    """Run ``command`` in its guest, shown by ``view``: a TUI, or a console renderer for its events
    (each with ``--emit-events`` added to the command); None: the guest's lines only, copied."""
    if view is None:
        return on_console(command, None, journal)
    command = attrs.evolve(command, inner=(*command.inner, EMIT))
    if isinstance(view, RunView):
        return run_tui(command, view.phases, view.title, journal)
    if isinstance(view, SweepView):
        return sweep_tui(command, view.spec, view.out)
    return on_console(command, view, journal)


def run_tui(command: GuestCommand, phases: Sequence[PlannedPhase], title: str, journal: Path | None) -> int:
    """The run in the guest, shown in the TUI as a host run is."""
    app, relayed = run_app(command, phases, title)
    app.run()
    return relayed.after(app, journal, f"the journal {journal}")


def sweep_tui(command: GuestCommand, spec: Sweep, out: Path) -> int:
    """A sweep in the guest, shown in the sweep's TUI as a host sweep is."""
    app, relayed = sweep_app(command, spec)
    app.run()
    return relayed.after(app, None, f"the trials' journals in {out / 'journals'}")
