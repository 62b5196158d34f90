"""Ctrl-C in two stages, for every command that changes something or waits on a testbed."""

from __future__ import annotations

import asyncio
import signal
import sys


def two_stage_interrupt(message: str) -> asyncio.Event:
    """SIGINT/SIGTERM once: say ``message`` and cancel the current task (its undos run); twice:
    set the returned event, so the undos are no longer waited for."""
    task = asyncio.current_task()
    assert task is not None
    abandon = asyncio.Event()
    signals = 0

    def interrupted() -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            print(message, file=sys.stderr)
            task.cancel()
        else:
            abandon.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupted)
    return abandon
