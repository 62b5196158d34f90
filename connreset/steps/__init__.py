"""The step vocabulary of connreset experiments."""

from connreset.steps.base import Step, StepContext
from connreset.steps.cluster import AssertCrashLoop, AssertLogs, AssertRunning, Deploy, Scale
from connreset.steps.control import Call, Wait
from connreset.steps.node import DROP_INVALID, FIXES, ApplyFix, Observe, SetSysctl

__all__ = [
    "DROP_INVALID",
    "FIXES",
    "ApplyFix",
    "AssertCrashLoop",
    "AssertLogs",
    "AssertRunning",
    "Call",
    "Deploy",
    "Observe",
    "Scale",
    "SetSysctl",
    "Step",
    "StepContext",
    "Wait",
]
