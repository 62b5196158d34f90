"""connreset: declarative experiments for Kubernetes connection resets (kubernetes#74839).

Write an experiment as a graph of steps, run it on the embedded lab (network namespaces with the
real kernel conntrack) or on a cluster, and get every node setting put back, whatever happens.
"""

__version__ = "0.1.0"

from connreset import workloads
from connreset.backends.base import (
    Backend,
    Cluster,
    DeploymentSpec,
    ExecResult,
    Node,
    PodStatus,
    Rule,
    Workload,
)
from connreset.engine import (
    EventBus,
    PhaseVerdict,
    RunResult,
    StepResult,
    UndoRecord,
    UndoResult,
    run,
    run_sync,
)
from connreset.errors import (
    BackendError,
    ConnresetError,
    ExpectationFailed,
    LabBusy,
    NeedsRoot,
    ValidationError,
)
from connreset.experiment import Experiment, Phase
from connreset.graph import parallel, sequence
from connreset.loader import build, load
from connreset.params import Param
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
    Observe,
    RecordPods,
    Scale,
    SetSysctl,
    Step,
    StepContext,
    Wait,
)

__all__ = [
    "ApplyFix",
    "AssertCrashLoop",
    "AssertLogs",
    "AssertRunning",
    "AssertTableFull",
    "Backend",
    "BackendError",
    "Call",
    "Cluster",
    "ConnresetError",
    "CountLogs",
    "Delete",
    "Deploy",
    "DeploymentSpec",
    "EventBus",
    "ExecResult",
    "ExpectationFailed",
    "Experiment",
    "LabBusy",
    "NeedsRoot",
    "Node",
    "Observe",
    "Param",
    "Phase",
    "PhaseVerdict",
    "PodStatus",
    "RecordPods",
    "Rule",
    "RunResult",
    "Scale",
    "SetSysctl",
    "Step",
    "StepContext",
    "StepResult",
    "UndoRecord",
    "UndoResult",
    "ValidationError",
    "Wait",
    "Workload",
    "__version__",
    "build",
    "load",
    "parallel",
    "run",
    "run_sync",
    "sequence",
    "workloads",
]
