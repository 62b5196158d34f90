"""The verdict table at the end of a run: the console's table, coloured."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from connreset.engine.results import RunResult
from connreset.ui.console import verdict_table

_VERDICT_STYLE = {"PASSED": "bold green", "FAILED": "bold red", "ERROR": "bold red", "SKIPPED": "dim"}


class VerdictPanel(Static):
    """Hidden until the run (or the sweep) ends."""

    DEFAULT_CSS = """
    VerdictPanel { display: none; height: auto; max-height: 60%; border: round $success; padding: 0 1; }
    VerdictPanel.shown { display: block; }
    """

    text = ""

    def show(self, result: RunResult, width: int = 100) -> None:
        self.show_text(verdict_table(result, width), "verdict")

    def show_text(self, table: str, title: str) -> None:
        """A table (the verdict, a sweep's summary), its verdict words coloured."""
        self.text = table
        text = Text(table)
        for word, style in _VERDICT_STYLE.items():
            text.highlight_words([f" {word} "], style)
        text.highlight_words(["NOT as expected"], "bold red")
        self.border_title = title
        self.update(text)
        self.add_class("shown")
