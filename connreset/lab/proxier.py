"""Which kube-proxy a lab runs (the lab's ``proxy`` option), and how it sets nodes up and syncs.

- ``iptables`` (the default): kube-proxy before v1.15, iptables mode: no INVALID-drop rule;
- ``iptables-1.29``: v1.29+ iptables mode: the INVALID-drop rule, only where the node's
  be_liberal is 0 at setup (a new node's is);
- ``iptables-liberal``: v1.29+ with ``--conntrack-tcp-be-liberal``: be_liberal=1, no rule;
- ``nftables``: v1.33+ nftables mode (GA; beta since v1.31), table ``ip kube-proxy``: no INVALID
  drop (PR #122663);
- ``nftables-liberal``: nftables mode with ``conntrack.tcpBeLiberal`` (kind's): be_liberal=1;
- ``ipvs``: IPVS mode (deprecated since v1.35): no INVALID drop; needs a kernel with IPVS.

Each mode writes its rules with its own tool: ``iptables-restore``, ``nft -f`` or ``ipvsadm``.
``be_liberal`` is per network namespace: the liberal modes set it on each node, as kube-proxy
sets it on its node; a new node starts at the kernel's default, 0.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Sequence
from typing import Literal

import attrs

from connreset._support.logs import get_logger
from connreset.errors import BackendError, ValidationError
from connreset.lab import addressing as addr
from connreset.lab import plumbing, proxy, proxy_ipvs, proxy_nft
from connreset.lab.proxy import Service

log = get_logger("connreset.lab")

BE_LIBERAL = "net.netfilter.nf_conntrack_tcp_be_liberal"


@attrs.frozen
class Mode:
    """One kube-proxy the lab can model."""

    name: str
    tool: Literal["iptables", "nftables", "ipvs"]
    models: str
    #: whether kube-proxy's setup sets be_liberal=1 (``--conntrack-tcp-be-liberal``)
    liberal: bool = False
    #: whether the INVALID-drop rule is written at setup when the node's be_liberal is 0 (v1.29+)
    drop_when_strict: bool = False

    @property
    def has_drop_invalid(self) -> bool:
        """Whether this kube-proxy has an INVALID-drop rule at all (for ``ApplyFix``)."""
        return self.tool == "iptables"

    def describe(self) -> str:
        return f"{self.name} ({self.models})"


MODES: dict[str, Mode] = {
    m.name: m
    for m in (
        Mode("iptables", "iptables", "kube-proxy < v1.15, iptables mode: no INVALID-drop rule"),
        Mode(
            "iptables-1.29",
            "iptables",
            "kube-proxy v1.29+, iptables mode: the INVALID-drop rule when the node's be_liberal is 0",
            drop_when_strict=True,
        ),
        Mode(
            "iptables-liberal",
            "iptables",
            "kube-proxy v1.29+, iptables mode, --conntrack-tcp-be-liberal: be_liberal=1, "
            "no INVALID-drop rule",
            liberal=True,
            drop_when_strict=True,
        ),
        Mode("nftables", "nftables", "kube-proxy v1.33+ (GA), nftables mode: no INVALID drop"),
        Mode(
            "nftables-liberal",
            "nftables",
            "kube-proxy v1.33+, nftables mode, conntrack.tcpBeLiberal: be_liberal=1, no INVALID drop",
            liberal=True,
        ),
        Mode("ipvs", "ipvs", "kube-proxy IPVS mode (deprecated since v1.35): no INVALID drop"),
    )
}
DEFAULT = "iptables"
#: the guest-kernel way to run a mode this kernel cannot (the kernel-guest issue's option)
GUEST_HINT = "run it in a guest kernel that has IPVS, e.g. a Debian linux-image, with --kernel"


def mode(name: str) -> Mode:
    """The mode called ``name``; refuses an unknown one, and ``ipvs`` where IPVS cannot run.

    Raises:
        ValidationError: in one line, before anything is touched.
    """
    if name not in MODES:
        raise ValidationError(f"lab proxy must be one of {', '.join(MODES)}, got {name!r}")
    found = MODES[name]
    if found.tool == "nftables" and shutil.which("nft") is None:
        raise ValidationError(f"lab proxy={name} needs nft (Debian: nftables); nothing was changed")
    if found.tool == "ipvs":
        why = proxy_ipvs.missing()
        if why is not None:
            raise ValidationError(f"lab proxy=ipvs cannot run here: {why}; {GUEST_HINT}")
    return found


def no_drop_invalid(m: Mode) -> str:
    """Why ``ApplyFix("drop-invalid")`` is refused in a mode without that rule."""
    if m.tool == "nftables":
        return (
            f"the lab's kube-proxy is {m.name}: nftables mode has no INVALID-drop rule to add "
            "(removed by PR #122663); use fix be-liberal, as kube-proxy's own answer in this mode"
        )
    return f"the lab's kube-proxy is {m.name}: IPVS mode has no INVALID-drop rule to add; use fix be-liberal"


class Proxier:
    """One mode's kube-proxy on the lab's nodes: ``setup`` once per node, ``sync`` on changes."""

    def __init__(self, m: Mode, node_count: int) -> None:
        self.mode = m
        self.nodes = [addr.node_ns(i) for i in range(node_count)]
        self.drop_invalid: dict[str, bool] = {}  # per node, as decided at setup

    async def setup(self, adopted: bool = False) -> None:
        """Write the mode's base rules on every node, clearing another mode's first.

        ``adopted``: the nodes were left by ``connreset lab up`` (maybe in another mode): their
        be_liberal goes back to a new node's 0 before this mode decides.
        """
        await asyncio.gather(*(self._setup_node(i, ns, adopted) for i, ns in enumerate(self.nodes)))
        log.info("kube-proxy set up", proxy=self.mode.name, drop_invalid=self.drop_invalid)

    async def _setup_node(self, i: int, ns: str, adopted: bool) -> None:
        m = self.mode
        await _clear(ns)
        if adopted or m.liberal:
            await _sysctl(ns, BE_LIBERAL, "1" if m.liberal else "0")
        if m.tool == "iptables":
            liberal = (await plumbing.nsexec_ok(ns, ["sysctl", "-n", BE_LIBERAL])).strip() != "0"
            self.drop_invalid[ns] = m.drop_when_strict and not liberal
            await plumbing.restore_rules([ns], proxy.base_rules(self.drop_invalid[ns]))
        elif m.tool == "nftables":
            self.drop_invalid[ns] = False
            await plumbing.nsexec_ok(ns, ["nft", "-f", "-"], proxy_nft.ruleset([], addr.node_ip(i)).encode())
        else:
            self.drop_invalid[ns] = False
            await _load_ipvs(ns)
            for key, value in proxy_ipvs.SYSCTLS.items():
                await _sysctl(ns, key, value)
            await plumbing.ip_batch(proxy_ipvs.dummy_commands([], first=True), ns)
            await plumbing.restore_rules([ns], proxy_ipvs.rules([]))
            await plumbing.nsexec_ok(ns, ["ipvsadm", "-C"])

    async def sync(self, services: Sequence[Service]) -> None:
        """Make every node's rules match ``services`` (kube-proxy's syncProxyRules)."""
        m = self.mode
        if m.tool == "iptables":
            await plumbing.restore_rules(self.nodes, proxy.nat_table(services))
        elif m.tool == "nftables":
            await asyncio.gather(
                *(
                    plumbing.nsexec_ok(
                        ns, ["nft", "-f", "-"], proxy_nft.ruleset(services, addr.node_ip(i)).encode()
                    )
                    for i, ns in enumerate(self.nodes)
                )
            )
        else:

            async def one(i: int, ns: str) -> None:
                await plumbing.ip_batch(proxy_ipvs.dummy_commands(services, first=False), ns)
                await plumbing.restore_rules([ns], proxy_ipvs.nat_table(services))
                await plumbing.nsexec_ok(
                    ns,
                    ["ipvsadm-restore"],
                    ("-C\n" + proxy_ipvs.ipvsadm_rules(services, addr.node_ip(i))).encode(),
                )

            await asyncio.gather(*(one(i, ns) for i, ns in enumerate(self.nodes)))


async def _clear(ns: str) -> None:
    """Remove every mode's rules from a node (its namespace is the lab's own)."""
    if shutil.which("nft") is not None:
        await plumbing.nsexec_ok(ns, ["nft", "flush", "ruleset"])
    else:  # iptables-legacy only: the iptables modes rewrite their tables whole anyway
        for table in ("filter", "nat"):
            await plumbing.nsexec(ns, ["iptables", "-w", "5", "-t", table, "-F"])
    await plumbing.ip_batch([f"link delete {proxy_ipvs.DUMMY}"], ns, deleting=True)


async def _sysctl(ns: str, key: str, value: str) -> None:
    await plumbing.nsexec_ok(ns, ["sysctl", "-q", "-w", f"{key}={value}"])


async def _load_ipvs(ns: str) -> None:
    code, _, _ = await plumbing.nsexec(ns, ["test", "-e", "/proc/net/ip_vs"])
    if code == 0:
        return
    code, _, err = await plumbing.nsexec(ns, ["modprobe", "ip_vs"])
    if code != 0:
        raise BackendError(f"proxy=ipvs: modprobe ip_vs failed: {err.strip()[:300]}; {GUEST_HINT}")
