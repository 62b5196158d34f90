"""The verdict table at the end of a run: the console's table, coloured."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from connreset.console import verdict_table
from connreset.engine.results import RunResult

_VERDICT_STYLE = {"PASSED": "bold green", "FAILED": "bold red", "ERROR": "bold red", "SKIPPED": "dim"}


class VerdictPanel(Static):
    """Hidden until the run ends."""

    DEFAULT_CSS = """
    VerdictPanel { display: none; height: auto; max-height: 60%; border: round $success; padding: 0 1; }
    VerdictPanel.shown { display: block; }
    """

    text = ""

    def show(self, result: RunResult, width: int = 100) -> None:
        self.text = verdict_table(result, width)
        text = Text(self.text)
        for word, style in _VERDICT_STYLE.items():
            text.highlight_words([f" {word} "], style)
        self.border_title = "verdict"
        self.update(text)
        self.add_class("shown")
