"""The event pane (steps, notes, undos, a sweep's progress, captured log lines) and the pod log
pane."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.widgets import RichLog

from connreset import events as ev
from connreset.ui.console import sweep_line

MARK = {"ok": "✓", "failed": "✗", "error": "!", "skipped": "-", "cancelled": "⊘"}


def describe(event: ev.Event) -> Text | None:
    """A line for the event pane, or None for events it does not show."""
    match event:
        case ev.RunStarted():
            params = " ".join(f"{k}={v}" for k, v in event.params.items())
            return Text(f"▶ {event.experiment} on {event.testbed} {params}".rstrip(), style="bold")
        case ev.PhaseStarted():
            return Text(f"── phase {event.phase}", style="bold")
        case ev.StepFinished() if event.status != "skipped":
            style = "green" if event.status == "ok" else "red"
            detail = f"  {event.detail}" if event.detail else ""
            return Text(f"{MARK[event.status]} {event.step} [{event.duration_s:.2f}s]{detail}", style=style)
        case ev.StepNote():
            return Text(f"  · {event.message}", style="dim")
        case ev.FindingRecorded():
            return Text(f"  = {event.phase}.{event.key}: {event.value}", style="cyan")
        case ev.UndoFinished():
            ok = "✓" if event.verified else "✗"
            style = "green" if event.verified else "bold red"
            return Text(
                f"↶ {ok} {event.record.node}: {event.record.describe()} ({event.detail})", style=style
            )
        case ev.SweepProgress():
            return Text(sweep_line(event), style="bold magenta")
        case ev.RunFinished():
            return Text(f"■ run {event.outcome}{' (cancelled)' if event.cancelled else ''}", style="bold")
        case _:
            return None


class EventLog(RichLog):
    """What happened, a line each; also what the app captures of stdout and stderr (log records)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(wrap=True, markup=False, max_lines=2000, **kwargs)  # type: ignore[arg-type]

    def event(self, event: ev.Event) -> None:
        line = describe(event)
        if line is not None:
            self.write(line)

    def on_print(self, event: events.Print) -> None:
        text = event.text.rstrip("\n")
        if text.strip():
            self.write(Text.from_ansi(text))


class PodLogs(RichLog):
    """Pod log lines as the cluster streams them (toggled with a key)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(wrap=False, markup=False, max_lines=2000, **kwargs)  # type: ignore[arg-type]

    def line(self, event: ev.PodLog) -> None:
        self.write(Text.assemble((event.pod, "cyan"), ": ", event.line))
