"""kube-proxy's IPVS mode for one node: ``ipvsadm``, the ``kube-ipvs0`` dummy and its sysctls.

As ``pkg/proxy/ipvs/proxier.go`` sets a node up:

- the sysctls ``net/ipv4/vs/conntrack=1`` (so that conntrack still sees IPVS's connections and
  masquerading works), ``expire_nodest_conn=1`` and ``expire_quiescent_template=1``;
- a ``kube-ipvs0`` dummy interface holding every ClusterIP (left down: the addresses only make
  the node accept the packets, IPVS takes them at LOCAL_IN);
- one IPVS virtual server per ClusterIP:port and per node address:NodePort, round robin, with the
  endpoints as masquerading (NAT) real servers;
- iptables for what IPVS does not do: ``KUBE-MARK-MASQ``/``KUBE-POSTROUTING`` for traffic from
  outside the cluster CIDR and for NodePorts, and ``KUBE-FORWARD`` with only the masquerade-mark
  ACCEPT and the RELATED,ESTABLISHED ACCEPT: **no INVALID drop in this mode**. kube-proxy matches
  with ipsets (``KUBE-CLUSTER-IP``, ``KUBE-NODE-PORT-TCP``); the lab writes one rule per entry,
  the same matches without the ipset tool.

IPVS reverses its NAT from its own connection table (``ip_vs_out``, at FORWARD), not from
conntrack's state: whether a forged segment resets a connection here is to be measured, in a
kernel that has IPVS (``CONFIG_IP_VS``; Debian's kernels have it as modules).
"""

from __future__ import annotations

import platform
import shutil
from collections.abc import Sequence
from pathlib import Path

from connreset.lab import proxy
from connreset.lab.addressing import CLUSTER_CIDR
from connreset.lab.proxy import MASQUERADE_RULES, Service

DUMMY = "kube-ipvs0"
#: kube-proxy's IPVS sysctls (net/ipv4/vs/...), per network namespace
SYSCTLS = {
    "net.ipv4.vs.conntrack": "1",
    "net.ipv4.vs.expire_nodest_conn": "1",
    "net.ipv4.vs.expire_quiescent_template": "1",
}


def missing(release: str | None = None, root: Path = Path("/")) -> str | None:
    """Why IPVS cannot run on this kernel (None: it can).

    IPVS is there when ``/proc/net/ip_vs`` exists (built in, or its module loaded), or loadable
    when the kernel's module tree has ``ip_vs`` (``modules.dep`` or ``modules.builtin``).
    """
    release = release or platform.release()
    if shutil.which("ipvsadm") is None:
        return "ipvsadm is not installed (Debian: ipvsadm)"
    if (root / "proc/net/ip_vs").exists():
        return None
    mods = root / "lib/modules" / release
    for index in ("modules.builtin", "modules.dep"):
        try:
            text = (mods / index).read_text()
        except OSError:
            continue
        if "/ip_vs.ko" in text:
            return None
    return (
        f"this kernel ({release}) has no IPVS: no /proc/net/ip_vs and no ip_vs module (CONFIG_IP_VS is off)"
    )


def nat_table(services: Sequence[Service]) -> str:
    """The nat table kube-proxy's IPVS mode keeps beside IPVS (masquerading only)."""
    rules = list(MASQUERADE_RULES)
    for svc in sorted(services, key=lambda s: s.name):
        dest = f"-d {svc.vip}/32 -p tcp -m tcp --dport {svc.port}"
        rules.append(
            f'-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade '
            f'purpose" ! -s {CLUSTER_CIDR} {dest} -j KUBE-MARK-MASQ'
        )
        rules.append(f"-A KUBE-SERVICES {dest} -j ACCEPT")
        if svc.node_port is not None:
            rules.append(f"-A KUBE-NODE-PORT -p tcp -m tcp --dport {svc.node_port} -j KUBE-MARK-MASQ")
    rules.append("-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT")
    head = ["*nat", *(f":{c} ACCEPT [0:0]" for c in ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"))]
    head += [
        f":{c} - [0:0]" for c in ("KUBE-SERVICES", "KUBE-NODE-PORT", "KUBE-POSTROUTING", "KUBE-MARK-MASQ")
    ]
    return "\n".join([*head, *rules, "COMMIT", ""])


def rules(services: Sequence[Service]) -> str:
    """The iptables-restore text: filter (no INVALID drop) and nat."""
    return proxy.filter_table(drop_invalid=False) + nat_table(services)


def ipvsadm_rules(services: Sequence[Service], node_ip: str) -> str:
    """``ipvsadm-restore`` input: every virtual server and its real servers, after a clear."""
    out = []
    for svc in sorted(services, key=lambda s: s.name):
        fronts = [f"{svc.vip}:{svc.port}"]
        if svc.node_port is not None:
            fronts.append(f"{node_ip}:{svc.node_port}")
        for front in fronts:
            out.append(f"-A -t {front} -s rr")
            out += [f"-a -t {front} -r {ep}:{svc.target_port} -m -w 1" for ep in sorted(svc.endpoints)]
    return "\n".join(out) + "\n"


def dummy_commands(services: Sequence[Service], first: bool) -> list[str]:
    """``ip -batch`` lines that give ``kube-ipvs0`` exactly the Services' ClusterIPs."""
    cmds = [f"link add {DUMMY} type dummy"] if first else [f"addr flush dev {DUMMY}"]
    cmds += [f"addr add {svc.vip}/32 dev {DUMMY}" for svc in sorted(services, key=lambda s: s.name)]
    return cmds
