"""The asyncio engine: scheduling, undo, the log index and results, on an open testbed."""

from connreset.engine.options import RunOptions
from connreset.engine.results import PhaseVerdict, RunResult, StepResult, UndoResult
from connreset.engine.runner import RunCancelled, run_on
from connreset.engine.undo import UndoRecord

__all__ = [
    "PhaseVerdict",
    "RunCancelled",
    "RunOptions",
    "RunResult",
    "StepResult",
    "UndoRecord",
    "UndoResult",
    "run_on",
]
