"""kube-proxy's iptables mode, as ``iptables-restore`` input for one node.

(The other modes: :mod:`connreset.lab.proxy_nft`, :mod:`connreset.lab.proxy_ipvs`; which one a
lab runs, and how it is set up and synced: :mod:`connreset.lab.proxier`.)

The nat table is written whole on every sync (kube-proxy's own way: one atomic restore); the
filter table is written once when the node is made, so that a fix rule added later survives
syncs. Pod-to-Service traffic from inside the cluster CIDR is not masqueraded (kube-proxy's
default with ``--cluster-cidr``): the reverse NAT of #74839 depends on it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

import attrs

from connreset.lab.addressing import CLUSTER_CIDR

MASQ_MARK = "0x4000/0x4000"


@attrs.frozen
class Service:
    name: str
    vip: str
    port: int
    target_port: int
    endpoints: tuple[str, ...]  # pod IPs, ready ones only
    node_port: int | None = None  # type NodePort (externalTrafficPolicy Cluster) when set


def _hash(*parts: str) -> str:
    """kube-proxy's chain suffix: base32 of a SHA-256, 16 characters."""
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return base64.b32encode(digest).decode()[:16]


def svc_chain(svc: Service) -> str:
    return "KUBE-SVC-" + _hash(svc.name, "tcp", str(svc.port))


def sep_chain(svc: Service, endpoint: str) -> str:
    return "KUBE-SEP-" + _hash(svc.name, "tcp", endpoint, str(svc.target_port))


def ext_chain(svc: Service) -> str:
    return "KUBE-EXT-" + _hash(svc.name, "tcp", str(svc.port))


#: The nat table's entry jumps and kube-proxy's masquerading (KUBE-MARK-MASQ marks, then
#: KUBE-POSTROUTING masquerades what is marked), as its iptables and IPVS modes both write them.
MASQUERADE_RULES = (
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    f"-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK} -j RETURN",
    "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
    "-j MASQUERADE --random-fully",
    f"-A KUBE-MARK-MASQ -j MARK --or-mark {MASQ_MARK.split('/')[0]}",
)


def nat_table(services: Sequence[Service]) -> str:
    """The whole nat table for a node."""
    chains = ["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"]
    nodeports: list[str] = []
    rules = list(MASQUERADE_RULES)
    for svc in sorted(services, key=lambda s: s.name):
        comment = f'-m comment --comment "default/{svc.name} cluster IP"'
        dest = f"-d {svc.vip}/32 -p tcp -m tcp --dport {svc.port}"
        if not svc.endpoints:
            continue  # kube-proxy REJECTs these in the filter table; the lab simply has no rule
        svc_c = svc_chain(svc)
        chains.append(svc_c)
        rules.append(f"-A KUBE-SERVICES {comment} {dest} -j {svc_c}")
        rules.append(f"-A {svc_c} {comment} {dest} ! -s {CLUSTER_CIDR} -j KUBE-MARK-MASQ")
        n = len(svc.endpoints)
        for i, ep in enumerate(svc.endpoints):
            sep = sep_chain(svc, ep)
            chains.append(sep)
            pick = f"-m statistic --mode random --probability {1 / (n - i):.11f} " if i < n - 1 else ""
            rules.append(f'-A {svc_c} -m comment --comment "default/{svc.name} -> {ep}" {pick}-j {sep}')
            rules.append(f"-A {sep} -s {ep}/32 -j KUBE-MARK-MASQ")
            rules.append(f"-A {sep} -p tcp -m tcp -j DNAT --to-destination {ep}:{svc.target_port}")
        if svc.node_port is not None:  # NodePort traffic is masqueraded (policy Cluster)
            ext = ext_chain(svc)
            chains.append(ext)
            nodeports.append(
                f'-A KUBE-NODEPORTS -m comment --comment "default/{svc.name}" -p tcp -m tcp '
                f"--dport {svc.node_port} -j {ext}"
            )
            rules.append(
                f'-A {ext} -m comment --comment "masquerade traffic for default/{svc.name} external '
                'destinations" -j KUBE-MARK-MASQ'
            )
            rules.append(f"-A {ext} -j {svc_c}")
    rules += nodeports
    rules.append(
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the '
        'last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS'
    )
    head = [
        "*nat",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
    ]
    head += [f":{c} - [0:0]" for c in chains]
    return "\n".join([*head, *rules, "COMMIT", ""])


def base_rules(drop_invalid: bool = False) -> str:
    """A new node's rules: the filter table, and a nat table with no Services yet."""
    return filter_table(drop_invalid) + nat_table([])


#: kube-proxy v1.15+'s rule for #74839 (PR #74840), first in KUBE-FORWARD; as ApplyFix writes it
DROP_INVALID = "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP"


def filter_table(drop_invalid: bool = False) -> str:
    """The filter table for a node: without the INVALID-drop rule (kube-proxy < v1.15, or v1.29+
    on a node with ``be_liberal=1``), or with it (v1.15 to v1.28; v1.29+ on a strict node)."""
    return "\n".join(
        [
            "*filter",
            ":INPUT ACCEPT [0:0]",
            ":FORWARD ACCEPT [0:0]",
            ":OUTPUT ACCEPT [0:0]",
            ":KUBE-FORWARD - [0:0]",
            '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
            *([DROP_INVALID] if drop_invalid else []),
            f'-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark {MASQ_MARK} '
            "-j ACCEPT",
            '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" '
            "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "COMMIT",
            "",
        ]
    )
