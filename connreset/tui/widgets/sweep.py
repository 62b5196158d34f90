"""A sweep's progress: trials done of planned, the current parameters, the boundary so far."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, ProgressBar

from connreset import events as ev


class SweepPanel(Vertical):
    """Hidden until a sweep reports (SweepProgress); shows the last report."""

    DEFAULT_CSS = """
    SweepPanel { height: auto; display: none; }
    SweepPanel.active { display: block; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.last: ev.SweepProgress | None = None

    def compose(self) -> ComposeResult:
        yield Label("", id="sweep-trials")
        yield ProgressBar(total=1, show_eta=False, id="sweep-bar")
        yield Label("", id="sweep-params")
        yield Label("", id="sweep-boundary")

    def report(self, progress: ev.SweepProgress) -> None:
        self.last = progress
        self.add_class("active")
        self.query_one("#sweep-trials", Label).update(
            f"trials {progress.done}/{progress.planned}"
            + (f"  last: {progress.last}" if progress.last else "")
        )
        self.query_one("#sweep-bar", ProgressBar).update(
            total=max(progress.planned, 1), progress=progress.done
        )
        params = " ".join(f"{k}={v}" for k, v in progress.params.items())
        self.query_one("#sweep-params", Label).update(f"now: {params or '-'}")
        self.query_one("#sweep-boundary", Label).update(f"boundary: {progress.boundary or 'not found yet'}")
