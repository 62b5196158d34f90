"""A sweep's progress: trials done of planned, the current parameters, the boundary so far."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, ProgressBar

from connreset import events as ev


class SweepPanel(Vertical):
    """Hidden until a sweep reports (SweepProgress); shows the last report."""

    DEFAULT_CSS = """
    SweepPanel { height: auto; display: none; }
    SweepPanel.active { display: block; }
    SweepPanel Label { width: 1fr; }
    SweepPanel #sweep-head { height: 1; }
    SweepPanel #sweep-trials { width: auto; margin-right: 2; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.last: ev.SweepProgress | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="sweep-head"):
            yield Label("", id="sweep-trials")
            yield ProgressBar(total=1, show_eta=False, show_percentage=False, id="sweep-bar")
        yield Label("", id="sweep-params")
        yield Label("", id="sweep-last")
        yield Label("", id="sweep-boundary")

    def report(self, progress: ev.SweepProgress) -> None:
        self.last = progress
        self.add_class("active")
        self.query_one("#sweep-trials", Label).update(f"trials {progress.done}/{progress.planned}")
        self.query_one("#sweep-bar", ProgressBar).update(
            total=max(progress.planned, 1), progress=progress.done
        )
        params = " ".join(f"{k}={v}" for k, v in progress.params.items())
        self.query_one("#sweep-params", Label).update(f"now: {params or '-'}")
        self.query_one("#sweep-last", Label).update(f"last: {progress.last or '-'}")
        self.query_one("#sweep-boundary", Label).update(f"boundary: {progress.boundary or 'not found yet'}")

    def lines(self) -> list[str]:
        """What it shows, a line per label."""
        parts = ("trials", "params", "last", "boundary")
        return [str(self.query_one(f"#sweep-{part}", Label).render()) for part in parts]
