"""Testbeds: a cluster backend (workloads) composed with a node access (the nodes' kernels)."""

from connreset.testbed.access import NODE_CAPABILITIES, BaseNodeAccess, NodeAccess
from connreset.testbed.cluster import (
    RUN_LABEL,
    BaseClusterBackend,
    Capacity,
    ClusterBackend,
    DeploymentSpec,
    LogSink,
    NodeInfo,
    PodPhase,
    PodStatus,
)
from connreset.testbed.options import NoOptions, option
from connreset.testbed.testbed import Testbed, TestbedSpec
from connreset.testbed.workloads import Workload

__all__ = [
    "NODE_CAPABILITIES",
    "RUN_LABEL",
    "BaseClusterBackend",
    "BaseNodeAccess",
    "Capacity",
    "ClusterBackend",
    "DeploymentSpec",
    "LogSink",
    "NoOptions",
    "NodeAccess",
    "NodeInfo",
    "PodPhase",
    "PodStatus",
    "Testbed",
    "TestbedSpec",
    "Workload",
    "option",
]
