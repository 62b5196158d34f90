"""kube-proxy's nftables mode, as ``nft -f`` input for one node.

kube-proxy's own table, ``ip kube-proxy``, with the base chains, sets and verdict maps of
``pkg/proxy/nftables/proxier.go`` (GA in v1.33): ``services`` looks the destination up in the
``service-ips`` map (ClusterIPs) and, for the node's own addresses (``nodeport-ips``), in
``service-nodeports``; each Service has a ``service-…`` chain that picks an endpoint with
``numgen random`` and an ``endpoint-…`` chain that DNATs to it; NodePort traffic goes through an
``external-…`` chain that marks it for masquerading. The filter chains only jump on
``ct state new``: since PR #122663 (Jan 2024) there is no ``ct state invalid drop``, the mode
"does not attempt to work around conntrack bugs in the kernel".

Each sync rewrites the whole table in one transaction (``add``/``delete``/``add table``), so a
node never sees half a ruleset; kube-proxy itself sends partial transactions, which leave the same
rules in the kernel. Connections already NATed keep their conntrack entries across a rewrite.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from connreset.lab.addressing import CLUSTER_CIDR, SERVICE_CIDR
from connreset.lab.proxy import Service

TABLE = "kube-proxy"
FAMILY = "ip"
MASQ_MARK = "0x4000"

#: the base chains kube-proxy hooks into netfilter: name -> (type, hook, priority)
BASE_CHAINS: dict[str, tuple[str, str, int]] = {
    "filter-prerouting-pre-dnat": ("filter", "prerouting", -110),
    "filter-output-pre-dnat": ("filter", "output", -110),
    "filter-forward": ("filter", "forward", 0),
    "filter-input": ("filter", "input", 0),
    "filter-output": ("filter", "output", 0),
    "nat-prerouting": ("nat", "prerouting", -100),
    "nat-output": ("nat", "output", -100),
    "nat-postrouting": ("nat", "postrouting", 100),
}
#: its regular chains
CHAINS = (
    "cluster-ips-check",
    "firewall-check",
    "mark-for-masquerade",
    "masquerading",
    "nodeport-endpoints-check",
    "reject-chain",
    "services",
    "service-endpoints-check",
)
_ADDR_PORT = "ipv4_addr . inet_proto . inet_service"
#: its sets and maps: name -> (kind, type, comment)
SETS: dict[str, tuple[str, str, str]] = {
    "cluster-ips": ("set", "ipv4_addr", "Active ClusterIPs"),
    "nodeport-ips": ("set", "ipv4_addr", "IPs that accept NodePort traffic"),
    "firewall-ips": (
        "map",
        f"{_ADDR_PORT} : verdict",
        "destinations that are subject to LoadBalancerSourceRanges",
    ),
    "no-endpoint-nodeports": (
        "map",
        "inet_proto . inet_service : verdict",
        "vmap to drop or reject packets to service nodeports with no endpoints",
    ),
    "no-endpoint-services": (
        "map",
        f"{_ADDR_PORT} : verdict",
        "vmap to drop or reject packets to services with no endpoints",
    ),
    "service-ips": ("map", f"{_ADDR_PORT} : verdict", "ClusterIP, ExternalIP and LoadBalancer IP traffic"),
    "service-nodeports": ("map", "inet_proto . inet_service : verdict", "NodePort traffic"),
}


def _hash(name: str) -> str:
    """kube-proxy's chain prefix: the first 8 characters of a base32 SHA-256."""
    return base64.b32encode(hashlib.sha256(name.encode()).digest()).decode()[:8]


def _port_name(svc: Service) -> str:
    return f"default/{svc.name}/tcp/p{svc.port}"


def service_chain(svc: Service) -> str:
    name = _port_name(svc)
    return f"service-{_hash(name)}-{name}"


def external_chain(svc: Service) -> str:
    name = _port_name(svc)
    return f"external-{_hash(name)}-{name}"


def endpoint_chain(svc: Service, ep: str) -> str:
    name = f"{_port_name(svc)}__{ep}/{svc.target_port}"
    return f"endpoint-{_hash(name)}-{name}"


def ruleset(services: Sequence[Service], node_ip: str) -> str:
    """The whole ``ip kube-proxy`` table for the node at ``node_ip``, replacing any earlier one."""
    t = f"{FAMILY} {TABLE}"
    out = [
        f"add table {t}",
        f"delete table {t}",
        f'add table {t} {{ comment "rules for kube-proxy" ; }}',
    ]
    for name, (kind, typ, comment) in SETS.items():
        out.append(f'add {kind} {t} {name} {{ type {typ} ; comment "{comment}" ; }}')
    for name, (typ, hook, prio) in BASE_CHAINS.items():
        out.append(f"add chain {t} {name} {{ type {typ} hook {hook} priority {prio} ; }}")
    out += [f"add chain {t} {name}" for name in CHAINS]
    out += [
        f"add rule {t} cluster-ips-check ip daddr @cluster-ips reject "
        'comment "Reject traffic to invalid ports of ClusterIPs"',
        f"add rule {t} cluster-ips-check ip daddr {{ {SERVICE_CIDR} }} drop "
        'comment "Drop traffic to unallocated ClusterIPs"',
        f"add rule {t} filter-prerouting-pre-dnat ct state new jump firewall-check",
        f"add rule {t} filter-forward ct state new jump service-endpoints-check",
        f"add rule {t} filter-forward ct state new jump cluster-ips-check",
        f"add rule {t} filter-input ct state new jump nodeport-endpoints-check",
        f"add rule {t} filter-input ct state new jump service-endpoints-check",
        f"add rule {t} filter-output ct state new jump service-endpoints-check",
        f"add rule {t} filter-output-pre-dnat ct state new jump firewall-check",
        f"add rule {t} filter-output ct state new jump cluster-ips-check",
        f"add rule {t} firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips",
        f"add rule {t} mark-for-masquerade mark set mark or {MASQ_MARK}",
        f"add rule {t} masquerading mark and {MASQ_MARK} == 0 return",
        f"add rule {t} masquerading mark set mark xor {MASQ_MARK}",
        f"add rule {t} masquerading masquerade fully-random",
        f"add rule {t} nat-output jump services",
        f"add rule {t} nat-postrouting jump masquerading",
        f"add rule {t} nat-prerouting jump services",
        f"add rule {t} nodeport-endpoints-check ip daddr @nodeport-ips "
        "meta l4proto . th dport vmap @no-endpoint-nodeports",
        f"add rule {t} reject-chain reject",
        f"add rule {t} services ip daddr . meta l4proto . th dport vmap @service-ips",
        f"add rule {t} services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports",
        f"add element {t} nodeport-ips {{ {node_ip} }}",
        f"add rule {t} service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services",
    ]
    for svc in sorted(services, key=lambda s: s.name):
        out.append(f"add element {t} cluster-ips {{ {svc.vip} }}")
        key = f"{svc.vip} . tcp . {svc.port}"
        if not svc.endpoints:
            out.append(
                f"add element {t} no-endpoint-services "
                f'{{ {key} comment "default/{svc.name}" : goto reject-chain }}'
            )
            if svc.node_port is not None:
                out.append(
                    f"add element {t} no-endpoint-nodeports {{ tcp . {svc.node_port} "
                    f'comment "default/{svc.name}" : goto reject-chain }}'
                )
            continue
        chain = service_chain(svc)
        eps = sorted(svc.endpoints)
        picks = " , ".join(f"{i} : goto {endpoint_chain(svc, ep)}" for i, ep in enumerate(eps))
        for ep in eps:  # a chain exists before a rule jumps to it
            ep_chain = endpoint_chain(svc, ep)
            out += [
                f"add chain {t} {ep_chain}",
                f"add rule {t} {ep_chain} ip saddr {ep} jump mark-for-masquerade",
                f"add rule {t} {ep_chain} meta l4proto tcp dnat to {ep}:{svc.target_port}",
            ]
        out += [
            f"add chain {t} {chain}",
            f"add rule {t} {chain} ip daddr {svc.vip} ip saddr != {CLUSTER_CIDR} jump mark-for-masquerade",
            f"add rule {t} {chain} numgen random mod {len(eps)} vmap {{ {picks} }}",
        ]
        out.append(f"add element {t} service-ips {{ {key} : goto {chain} }}")
        if svc.node_port is not None:
            ext = external_chain(svc)
            out += [
                f"add chain {t} {ext}",
                f"add rule {t} {ext} jump mark-for-masquerade",
                f"add rule {t} {ext} goto {chain}",
                f"add element {t} service-nodeports {{ tcp . {svc.node_port} : goto {ext} }}",
            ]
    return "\n".join(out) + "\n"
