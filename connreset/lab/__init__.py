"""The embedded lab: a small cluster of network namespaces with kube-proxy's rules and the real
kernel conntrack, on this machine, for the length of a testbed."""

from __future__ import annotations

from connreset.testbed import Testbed, TestbedSpec


def testbed(nodes: int = 2, time_scale: float = 1.0, proxy: str = "iptables") -> Testbed:
    """The lab as a testbed: its cluster backend and its own node access (not opened yet).
    ``proxy``: the kube-proxy its nodes run (:mod:`connreset.lab.proxier`)."""
    from connreset.lab.access import LabNodeAccess
    from connreset.lab.backend import LabBackend

    options = {"nodes": str(nodes), "time_scale": str(time_scale), "proxy": proxy}
    lab = LabBackend(nodes=nodes, time_scale=time_scale, proxy=proxy)
    return Testbed(lab, LabNodeAccess(), TestbedSpec("lab", "lab", options))
