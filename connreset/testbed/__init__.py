"""Testbeds: a cluster backend (workloads) composed with a node access (the nodes' kernels)."""

from connreset.testbed.access import NODE_CAPABILITIES, BaseNodeAccess, NodeAccess
from connreset.testbed.cluster import (
    RUN_LABEL,
    Capacity,
    ClusterBackend,
    DeploymentSpec,
    LogSink,
    NodeInfo,
    PodPhase,
    PodStatus,
    Workload,
)
from connreset.testbed.testbed import Testbed, TestbedSpec

__all__ = [
    "NODE_CAPABILITIES",
    "RUN_LABEL",
    "BaseNodeAccess",
    "Capacity",
    "ClusterBackend",
    "DeploymentSpec",
    "LogSink",
    "NodeAccess",
    "NodeInfo",
    "PodPhase",
    "PodStatus",
    "Testbed",
    "TestbedSpec",
    "Workload",
]
