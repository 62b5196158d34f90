"""connreset: declarative experiments for Kubernetes connection resets (kubernetes#74839).

Write an experiment as a graph of steps, run it on the embedded lab (network namespaces with the
real kernel conntrack) or on a cluster, and get every node setting put back, whatever happens.
"""

__version__ = "0.1.0"

from connreset import events, workloads
from connreset.doctor import DoctorReport, doctor
from connreset.engine import (
    PhaseVerdict,
    RunCancelled,
    RunResult,
    StepResult,
    UndoRecord,
    UndoResult,
    run_on,
)
from connreset.errors import (
    BackendError,
    ConnresetError,
    ExpectationFailed,
    JournalError,
    LabBusy,
    NeedsRoot,
    ValidationError,
)
from connreset.events import EventBus
from connreset.experiment import Experiment, Phase
from connreset.graph import parallel, sequence
from connreset.kernel import ExecResult, NodeKernel, Rule
from connreset.loader import load
from connreset.params import Param
from connreset.plan import Plan, build
from connreset.runs import run, run_sync
from connreset.steps import (
    ApplyFix,
    AssertCrashLoop,
    AssertLogs,
    AssertRunning,
    AssertTableFull,
    Call,
    CountLogs,
    Delete,
    Deploy,
    FlushConntrack,
    Observe,
    RecordPods,
    Scale,
    SetSysctl,
    Step,
    StepContext,
    Wait,
)
from connreset.testbed import (
    BaseNodeAccess,
    ClusterBackend,
    DeploymentSpec,
    NodeAccess,
    NodeInfo,
    PodStatus,
    Testbed,
    TestbedSpec,
    Workload,
)

__all__ = [
    "ApplyFix",
    "AssertCrashLoop",
    "AssertLogs",
    "AssertRunning",
    "AssertTableFull",
    "BackendError",
    "BaseNodeAccess",
    "Call",
    "ClusterBackend",
    "ConnresetError",
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
    "JournalError",
    "LabBusy",
    "NeedsRoot",
    "NodeAccess",
    "NodeInfo",
    "NodeKernel",
    "Observe",
    "Param",
    "Phase",
    "PhaseVerdict",
    "Plan",
    "PodStatus",
    "RecordPods",
    "Rule",
    "RunCancelled",
    "RunResult",
    "Scale",
    "SetSysctl",
    "Step",
    "StepContext",
    "StepResult",
    "Testbed",
    "TestbedSpec",
    "UndoRecord",
    "UndoResult",
    "ValidationError",
    "Wait",
    "Workload",
    "__version__",
    "build",
    "doctor",
    "events",
    "load",
    "parallel",
    "run",
    "run_on",
    "run_sync",
    "sequence",
    "workloads",
]
