"""connreset: declarative experiments for Kubernetes connection resets (kubernetes#74839).

Write an experiment as a graph of steps, run it on the embedded lab (network namespaces with the
real kernel conntrack) or on a cluster, and get every node setting put back, whatever happens.
"""

from connreset import events, workloads
from connreset._support import moved  # noqa: F401  (its import installs the hook for old module paths)
from connreset._version import __version__
from connreset.doctor import DoctorReport, doctor
from connreset.engine import (
    PhaseVerdict,
    RunCancelled,
    RunOptions,
    RunResult,
    StepResult,
    UndoRecord,
    UndoResult,
    run_on,
)
from connreset.errors import (
    AuthFailed,
    BackendError,
    ConnresetError,
    ExpectationFailed,
    HostKeyRefused,
    JournalError,
    NodeUnavailable,
    TimedOut,
    ToolMissing,
    Unreachable,
    ValidationError,
)
from connreset.events import EventBus
from connreset.experiment import Experiment, Phase
from connreset.experiment.claims import Claim, Conclusion
from connreset.experiment.loader import load
from connreset.experiment.params import Param
from connreset.experiment.plan import Plan, build
from connreset.kernel import ExecResult, NodeKernel, Rule
from connreset.lab.errors import LabBusy, NeedsRoot
from connreset.runs import run, run_sync
from connreset.steps import (
    ApplyFix,
    AssertCrashLoop,
    AssertFillsToMax,
    AssertLogs,
    AssertRunning,
    AssertTableFull,
    Call,
    CountCurlErrors,
    CountLogs,
    Delete,
    Deploy,
    FlushConntrack,
    Observe,
    RecordConntrackMemory,
    RecordPods,
    RecordSysctl,
    Scale,
    SetSysctl,
    Step,
    StepContext,
    Wait,
)
from connreset.steps.base import parallel, sequence
from connreset.testbed import (
    BaseClusterBackend,
    BaseNodeAccess,
    ClusterBackend,
    DeploymentSpec,
    NodeAccess,
    NodeInfo,
    PodStatus,
    Testbed,
    TestbedSpec,
    Workload,
    option,
)
from connreset.testbed.probes import Liveness

__all__ = [
    "ApplyFix",
    "AssertCrashLoop",
    "AssertFillsToMax",
    "AssertLogs",
    "AssertRunning",
    "AssertTableFull",
    "AuthFailed",
    "BackendError",
    "BaseClusterBackend",
    "BaseNodeAccess",
    "Call",
    "Claim",
    "ClusterBackend",
    "Conclusion",
    "ConnresetError",
    "CountCurlErrors",
    "CountLogs",
    "Delete",
    "Deploy",
    "DeploymentSpec",
    "DoctorReport",
    "EventBus",
    "ExecResult",
    "ExpectationFailed",
    "Experiment",
    "FlushConntrack",
    "HostKeyRefused",
    "JournalError",
    "LabBusy",
    "Liveness",
    "NeedsRoot",
    "NodeAccess",
    "NodeInfo",
    "NodeKernel",
    "NodeUnavailable",
    "Observe",
    "Param",
    "Phase",
    "PhaseVerdict",
    "Plan",
    "PodStatus",
    "RecordConntrackMemory",
    "RecordPods",
    "RecordSysctl",
    "Rule",
    "RunCancelled",
    "RunOptions",
    "RunResult",
    "Scale",
    "SetSysctl",
    "Step",
    "StepContext",
    "StepResult",
    "Testbed",
    "TestbedSpec",
    "TimedOut",
    "ToolMissing",
    "UndoRecord",
    "UndoResult",
    "Unreachable",
    "ValidationError",
    "Wait",
    "Workload",
    "__version__",
    "build",
    "doctor",
    "events",
    "load",
    "option",
    "parallel",
    "run",
    "run_on",
    "run_sync",
    "sequence",
    "workloads",
]
