"""The asyncio engine: scheduling, undo, events and results."""

from connreset.engine.events import EventBus
from connreset.engine.results import PhaseVerdict, RunResult, StepResult, UndoResult
from connreset.engine.runner import run, run_sync
from connreset.engine.undo import UndoRecord

__all__ = [
    "EventBus",
    "PhaseVerdict",
    "RunResult",
    "StepResult",
    "UndoRecord",
    "UndoResult",
    "run",
    "run_sync",
]
