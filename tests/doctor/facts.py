"""Node facts as a node would show them, for the checks' tests (built here, not read)."""

from __future__ import annotations

from typing import Any

from connreset.doctor.facts import NodeFacts

LAB_RULES = """*nat
:KUBE-SERVICES - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
COMMIT
*filter
:KUBE-FORWARD - [0:0]
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
"""  # noqa: E501
DROP = (
    '-A KUBE-FORWARD -m conntrack --ctstate INVALID -m comment --comment "kubernetes: drop INVALID" -j DROP\n'
)

STATS = {"entries": 0, "drop": 0, "early_drop": 0, "insert_failed": 0, "invalid": 0, "chaintoolong": 0}


def facts(**over: Any) -> NodeFacts:
    """A quiet node on 6.18 in iptables mode without the drop rule, be_liberal 0: exposed."""
    sysctls = {
        "net.netfilter.nf_conntrack_tcp_be_liberal": "0",
        "net.netfilter.nf_conntrack_max": "262144",
        "net.netfilter.nf_conntrack_buckets": "262144",
        "net.netfilter.nf_conntrack_tcp_timeout_close_wait": "3600",
        "net.netfilter.nf_conntrack_tcp_timeout_established": "86400",
        **over.pop("sysctls", {}),
    }
    base: dict[str, Any] = {
        "node": "node-1",
        "kernel": "6.18.44-fc-v1252",
        "sysctls": sysctls,
        "iptables": LAB_RULES,
        "nft_kube_proxy": False,
        "ipvs": False,
        "cpus": 2,
        "elapsed": 10.0,
        "stats_before": {**STATS, "entries": 100},
        "stats_after": {**STATS, "entries": 100},
        "counts": (100, 100, 100),
        "new_flows": 0,
        "table_full_before": 0,
        "table_full_after": 0,
    }
    base.update(over)
    return NodeFacts(**base)
