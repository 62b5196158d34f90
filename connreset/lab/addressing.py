"""The lab's address plan. Everything comes from 198.18.0.0/15 (RFC 2544, for benchmark labs).

- pods: 198.18.0.0/16, the cluster CIDR; node *i* (0-based) owns 198.18.(4i).0/22, whose first
  address is the node's gateway for its pods;
- nodes: 198.19.0.0/24 on the fabric bridge, node *i* at 198.19.0.(i+1);
- Service VIPs: 198.19.128.0/17;
- NodePorts: every Service is also of type NodePort, on 30000 + its VIP's index (the first
  Service's is 30000), on every node's address.
"""

from __future__ import annotations

import ipaddress

CLUSTER_CIDR = ipaddress.IPv4Network("198.18.0.0/16")
FABRIC_CIDR = ipaddress.IPv4Network("198.19.0.0/24")
SERVICE_CIDR = ipaddress.IPv4Network("198.19.128.0/17")
LAB_RANGE = ipaddress.IPv4Network("198.18.0.0/15")
MAX_NODES = 60
PODS_PER_NODE = 1020

PREFIX = "crlab-"  # every namespace the lab makes starts with this
FABRIC_NS = PREFIX + "fabric"


def node_name(i: int) -> str:
    return f"node-{i + 1}"


def node_ns(i: int) -> str:
    return f"{PREFIX}node-{i + 1}"


def pod_ns(pod_id: int) -> str:
    return f"{PREFIX}p{pod_id}"


def node_ip(i: int) -> str:
    return str(FABRIC_CIDR[i + 1])


def pod_cidr(i: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network((int(CLUSTER_CIDR.network_address) + i * 1024, 22))


def gateway(i: int) -> str:
    return str(pod_cidr(i)[1])


def pod_ip(i: int, slot: int) -> str:
    """The pod address for slot 0, 1, ... on node *i* (the gateway is slot -1)."""
    if not 0 <= slot < PODS_PER_NODE:
        raise ValueError(f"node {i} has no pod slot {slot}")
    return str(pod_cidr(i)[slot + 2])


def service_ip(n: int) -> str:
    return str(SERVICE_CIDR[n + 1])


NODE_PORT_BASE = 30000  # the low end of Kubernetes' default NodePort range, 30000-32767


def node_port(vip: str) -> int:
    """The NodePort of the Service whose ClusterIP is ``vip``."""
    return NODE_PORT_BASE + int(ipaddress.IPv4Address(vip)) - int(SERVICE_CIDR.network_address) - 1
