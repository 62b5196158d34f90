"""The run's settings, as one frozen value carried from the command line down to the engine."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import attrs

from connreset import events as ev
from connreset._support import numbers
from connreset.engine.watchdog import LEASE
from connreset.errors import ValidationError

UNDO_TIMEOUT = 30.0


def _seconds(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is None and attribute.name != "undo_timeout":
        return
    if attribute.name == "watchdog_lease" and numbers.is_number(value) and value == 0:
        return
    try:
        numbers.positive(attribute.name, value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def _path(value: str | os.PathLike[str] | None) -> str | None:
    return os.fspath(value) if value is not None else None


@attrs.frozen
class RunOptions:
    """How to run: timeouts, the watchdogs' lease, the journal and who hears the events.

    Args:
        journal: the journal's path (None: no journal).
        subscribers: called with every event (the console, the TUI).
        fail_fast: skip what follows a failed step.
        step_timeout: seconds per step, unless it sets its own (None: no limit).
        undo_timeout: seconds each undo may take before it is left pending.
        watchdog_lease: seconds without renewal before the node watchdogs put everything back
            by themselves (None or 0: no watchdogs).
        abandon: set it (a second Ctrl-C) to stop waiting for the undos.

    Raises:
        ValidationError: a timeout or the lease is not a finite number of seconds > 0.
    """

    journal: str | None = attrs.field(default=None, converter=_path)
    subscribers: tuple[ev.Subscriber, ...] = attrs.field(default=(), converter=tuple)
    fail_fast: bool = True
    step_timeout: float | None = attrs.field(default=None, validator=_seconds)
    undo_timeout: float = attrs.field(default=UNDO_TIMEOUT, validator=_seconds)
    watchdog_lease: float | None = attrs.field(default=LEASE, validator=_seconds)
    abandon: asyncio.Event | None = attrs.field(default=None, eq=False)

    def but(self, **changes: Any) -> RunOptions:
        """A copy with ``changes`` (validated like the original)."""
        try:
            return attrs.evolve(self, **changes)
        except TypeError as exc:
            raise TypeError(f"RunOptions: {exc}") from None

    @classmethod
    def of(cls, options: RunOptions | None = None, **settings: Any) -> RunOptions:
        """``options`` (default: the defaults) with single settings given beside it, as
        ``run(..., step_timeout=5)`` takes them; ``journal_path`` is ``journal``."""
        if "journal_path" in settings:
            settings["journal"] = settings.pop("journal_path")
        base = options or cls()
        return base.but(**settings) if settings else base
