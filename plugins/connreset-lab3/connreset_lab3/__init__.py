"""An example cluster-backend plugin: connreset's lab with three nodes, and an experiment for it.

It is written against the base classes: a plugin subclasses a backend (or
:class:`connreset.BaseClusterBackend`), declares its options once in an attrs class of
:func:`connreset.option` fields, and every hook it does not write keeps the base's default.
"""

from __future__ import annotations

import attrs

from connreset import ApplyFix, AssertTableFull, Experiment, Observe, SetSysctl, option
from connreset.lab.backend import LabBackend, LabOptions, valid_nodes


@attrs.frozen
class ThreeNodeOptions(LabOptions):
    """The lab's options, with three nodes by default."""

    nodes: int = option(3, "how many nodes (network namespaces); three by default", validator=valid_nodes)


class ThreeNodeLab(LabBackend):
    """The class named by the ``connreset.clusters`` entry point ``lab3``."""

    Options = ThreeNodeOptions


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
