"""The bridge from the engine to the TUI: an event subscriber that posts textual Messages.

The engine calls subscribers in its own event loop, which is the app's (the engine runs as a
textual worker), so posting is all there is to do: no threads, no polling.
"""

from __future__ import annotations

from textual.message_pump import MessagePump

from connreset import events as ev
from connreset.tui.messages import EngineEvent


class Bridge:
    """``fn(event)`` for ``subscribers=[...]``: posts each event to ``target`` as an EngineEvent."""

    def __init__(self, target: MessagePump) -> None:
        self._target = target

    def __call__(self, event: ev.Event) -> None:
        self._target.post_message(EngineEvent(event))
