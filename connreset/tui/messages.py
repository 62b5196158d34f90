"""The textual Messages the TUI's bridge posts: one per engine event, and one when the work ends."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
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


@attrs.frozen
class Finished:
    """How work the app is fed from outside ended (a run or a sweep in a guest, whose result
    stays there): its exit code, and what it said at its end for people (its verdict table or
    summary, as it printed it)."""

    exit_code: int
    text: str = ""


class Ended(Message):
    """The app's work (a run, a sweep) is over: whether it was stopped, and an error for people
    when it could not run, with the exit code to end with; ``text``: what work fed from outside
    said at its end (:class:`Finished`), shown where its result would be."""

    def __init__(
        self, *, cancelled: bool = False, error: str = "", exit_code: int = 0, text: str = ""
    ) -> None:
        super().__init__()
        self.cancelled = cancelled
        self.error = error
        self.exit_code = exit_code
        self.text = text


class RunEnded(Ended):
    """The run is over: its result (None if it never began)."""

    def __init__(
        self,
        result: RunResult | None,
        *,
        cancelled: bool = False,
        error: str = "",
        exit_code: int = 0,
        text: str = "",
    ) -> None:
        super().__init__(cancelled=cancelled, error=error, exit_code=exit_code, text=text)
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
        text: str = "",
    ) -> None:
        super().__init__(cancelled=cancelled, error=error, exit_code=exit_code, text=text)
        self.result = result
        self.trial = trial
        self.written = tuple(written)
        self.write_error = write_error
