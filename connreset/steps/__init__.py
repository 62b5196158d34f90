"""The step vocabulary of connreset experiments."""

from connreset.steps.base import Step, StepContext
from connreset.steps.clients import CountCurlErrors
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
from connreset.steps.records import AssertFillsToMax, RecordConntrackMemory, RecordSysctl

__all__ = [
    "DROP_INVALID",
    "FIXES",
    "ApplyFix",
    "AssertCrashLoop",
    "AssertFillsToMax",
    "AssertLogs",
    "AssertRunning",
    "AssertTableFull",
    "Call",
    "CountCurlErrors",
    "CountLogs",
    "Delete",
    "Deploy",
    "FlushConntrack",
    "Observe",
    "RecordConntrackMemory",
    "RecordPods",
    "RecordSysctl",
    "Scale",
    "SetSysctl",
    "Step",
    "StepContext",
    "Wait",
]
