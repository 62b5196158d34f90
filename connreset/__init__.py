"""connreset: declarative experiments for Kubernetes connection resets (kubernetes#74839).

Write an experiment as a graph of steps, run it on the embedded lab (network namespaces with the
real kernel conntrack) or on a cluster, and get every node setting put back, whatever happens.
"""

__version__ = "0.1.0"

from connreset.backends.base import (  # noqa: E402
    Backend, Cluster, DeploymentSpec, ExecResult, Node, PodStatus, Rule, Workload,
)
from connreset.engine import (  # noqa: E402
    EventBus, PhaseVerdict, RunResult, StepResult, UndoRecord, UndoResult, run, run_sync,
)
from connreset.errors import (  # noqa: E402
    BackendError, ConnresetError, ExpectationFailed, LabBusy, NeedsRoot, ValidationError,
)
from connreset.experiment import Experiment, Phase  # noqa: E402
from connreset.graph import parallel, sequence  # noqa: E402
from connreset.loader import build, load  # noqa: E402
from connreset.params import Param  # noqa: E402
from connreset.steps import (  # noqa: E402
    ApplyFix, AssertCrashLoop, AssertLogs, AssertRunning, AssertTableFull, Call, CountLogs, Delete,
    Deploy, Observe, RecordPods, Scale, SetSysctl, Step, StepContext, Wait,
)
from connreset import workloads  # noqa: E402

__all__ = [
    "ApplyFix", "AssertCrashLoop", "AssertLogs", "AssertRunning", "AssertTableFull",
    "CountLogs", "Delete", "RecordPods", "Backend", "BackendError",
    "Call", "Cluster", "ConnresetError", "Deploy", "DeploymentSpec", "EventBus", "ExecResult",
    "Experiment", "ExpectationFailed", "LabBusy", "NeedsRoot", "Node", "Observe", "Param",
    "Phase", "PhaseVerdict", "PodStatus", "Rule", "RunResult", "Scale", "SetSysctl", "Step",
    "StepContext", "StepResult", "UndoRecord", "UndoResult", "ValidationError", "Wait",
    "Workload", "__version__", "build", "load", "parallel", "run", "run_sync", "sequence",
    "workloads",
]
