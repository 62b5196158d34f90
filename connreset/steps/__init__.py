"""The step vocabulary of connreset experiments."""

from connreset.steps.base import Step, StepContext
from connreset.steps.cluster import (
    AssertCrashLoop,
    AssertLogs,
    AssertRunning,
    CountLogs,
    Delete,
    Deploy,
    RecordPods,
    Scale,
)
from connreset.steps.control import Call, Wait
from connreset.steps.node import (
    DROP_INVALID,
    FIXES,
    ApplyFix,
    AssertTableFull,
    FlushConntrack,
    Observe,
    SetSysctl,
)

__all__ = [
    "DROP_INVALID",
    "FIXES",
    "ApplyFix",
    "AssertCrashLoop",
    "AssertLogs",
    "AssertRunning",
    "AssertTableFull",
    "Call",
    "CountLogs",
    "Delete",
    "Deploy",
    "FlushConntrack",
    "Observe",
    "RecordPods",
    "Scale",
    "SetSysctl",
    "Step",
    "StepContext",
    "Wait",
]
