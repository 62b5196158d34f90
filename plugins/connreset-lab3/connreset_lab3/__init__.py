"""An example cluster-backend plugin: connreset's lab, with three nodes, and an experiment for it."""

from __future__ import annotations

from connreset import ApplyFix, AssertTableFull, Experiment, Observe, SetSysctl
from connreset.lab.backend import LabBackend


def three_node_lab(**options: str) -> LabBackend:
    """The factory named by the ``connreset.clusters`` entry point ``lab3``."""
    return LabBackend(nodes=3, **options)


def experiment(*, max_: int = 4096) -> Experiment:
    """Lower the table on the third node's kernel, watch all three, then the bigger-table fix."""
    return Experiment.single(
        "three-nodes",
        SetSysctl("nf_conntrack_tcp_be_liberal", 1, nodes=["node-3"])
        >> SetSysctl("nf_conntrack_max", max_)
        >> Observe(0.2)
        >> AssertTableFull(within=0.2, expect=False)
        >> ApplyFix("bigger-table", max=131072, buckets=32768),
    )
