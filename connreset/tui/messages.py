"""The textual Messages the TUI's bridge posts: one per engine event, and one when the work ends."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message

from connreset import events as ev
from connreset.engine.results import RunResult

if TYPE_CHECKING:
    from connreset.sweep import SweepResult


class EngineEvent(Message):
    """An engine event (``connreset.events``), delivered in the app's message queue, in order."""

    def __init__(self, event: ev.Event) -> None:
        super().__init__()
        self.event = event


class Ended(Message):
    """The app's work (a run, a sweep) is over: whether it was stopped, and an error for people
    when it could not run, with the exit code to end with."""

    def __init__(self, *, cancelled: bool = False, error: str = "", exit_code: int = 0) -> None:
        super().__init__()
        self.cancelled = cancelled
        self.error = error
        self.exit_code = exit_code


class RunEnded(Ended):
    """The run is over: its result (None if it never began)."""

    def __init__(
        self, result: RunResult | None, *, cancelled: bool = False, error: str = "", exit_code: int = 0
    ) -> None:
        super().__init__(cancelled=cancelled, error=error, exit_code=exit_code)
        self.result = result


class SweepEnded(Ended):
    """The sweep is over: its result (None if it never began or a trial ended in error); when it
    was stopped, the trial that was in flight (its undos) and the files the results so far were
    written to (``write_error``: why they could not be)."""

    def __init__(
        self,
        result: SweepResult | None,
        *,
        cancelled: bool = False,
        error: str = "",
        exit_code: int = 0,
        trial: RunResult | None = None,
        written: Sequence[Path] = (),
        write_error: str = "",
    ) -> None:
        super().__init__(cancelled=cancelled, error=error, exit_code=exit_code)
        self.result = result
        self.trial = trial
        self.written = tuple(written)
        self.write_error = write_error
