"""From a node's facts to its checks: each a value, a verdict with why, and the fix.

Pure functions of :class:`NodeFacts` (and kube-proxy's configuration where the API gave it), so
every verdict is tested without a node.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from connreset.doctor import data
from connreset.doctor.facts import COUNTERS, NodeFacts
from connreset.doctor.model import Check, NodeReport

BE_LIBERAL_FIX = (
    "set `conntrack.tcpBeLiberal: true` in kube-proxy's configuration (the kube-proxy ConfigMap, "
    "or `--conntrack-tcp-be-liberal`); kube-proxy then sets nf_conntrack_tcp_be_liberal=1 on every "
    "node, in every proxy mode"
)
_DROP = re.compile(r"^-A KUBE-FORWARD\b.*--ctstate\s+\S*INVALID.*-j DROP\b", re.MULTILINE)


def _num(n: float) -> str:
    return f"{n:,.0f}" if n >= 10 or n == int(n) else f"{n:,.1f}"


def _conntrack(kube_proxy: Mapping[str, Any] | None) -> Mapping[str, Any]:
    conf = (kube_proxy or {}).get("conntrack")
    return conf if isinstance(conf, Mapping) else {}


def proxy_mode(facts: NodeFacts) -> tuple[str | None, bool]:
    """kube-proxy's mode as the node's own rules show it, and whether KUBE-FORWARD drops INVALID.

    IPVS mode also writes KUBE-SERVICES in iptables, so kube-ipvs0 is looked at first.
    """
    rules = facts.iptables or ""
    drop = bool(_DROP.search(rules))
    if facts.ipvs:
        return "ipvs", drop
    if facts.nft_kube_proxy:
        return "nftables", drop
    if ":KUBE-SERVICES" in rules or "-A KUBE-SERVICES" in rules:
        return "iptables", drop
    return None, drop


def _kernel(facts: NodeFacts, protection: str | None, mode: str | None) -> Check:
    release = facts.kernel
    if release is None:
        return Check("kernel", "kernel", "?", "unknown", "the kernel release could not be read")
    shapes = data.shapes_that_reset(release)
    if shapes is None:
        return Check("kernel", "kernel", release, "unknown", f"cannot parse the release {release!r}")
    below, above = shapes
    row = data.measured(release)
    behind = "behind the window (upstream's −100000"
    behind += f"; from {row.behind_from:,} bytes behind, swept)" if row and row.behind_from else ")"
    ahead = "past the window" + (
        f" (from {row.ahead_from:,} bytes past it, swept)" if row and row.ahead_from else ""
    )
    said = " and ".join(s for s, on in ((behind, below), (ahead, above)) if on)
    basis = (
        f"measured on {row.kernel} ({row.where}; {row.source})"
        if row
        else f"by the rule: {'before' if below else 'from'} 6.1 (no row measured for this kernel)"
    )
    why = f"without a fix this kernel resets on a forged segment {said}, {basis}"
    data_ = {"below": below, "above": above, "measured": row.kernel if row else None}
    if protection:
        return Check("kernel", "kernel", release, "ok", f"{why}; {protection} prevents it", data=data_)
    if mode is None:
        return Check(
            "kernel", "kernel", release, "unknown",
            f"{why}; no kube-proxy rules were found, so whether Service traffic is NATed by conntrack "
            "here is not known", BE_LIBERAL_FIX, data=data_,
        )  # fmt: skip
    return Check(
        "kernel", "kernel", release, "exposed", f"{why}, and nothing on this node prevents it",
        BE_LIBERAL_FIX, "invalid-reset", data_,
    )  # fmt: skip


def _proxy(facts: NodeFacts, mode: str | None, drop: bool, liberal: bool, conf_mode: str | None) -> Check:
    data_: dict[str, Any] = {"mode": mode, "invalid_drop": drop, "configmap_mode": conf_mode}
    if facts.iptables is None and facts.nft_kube_proxy is None and facts.ipvs is None:
        return Check("kube-proxy", "kube-proxy mode", "?", "unknown", "the node's rules could not be read")
    said = f" (the ConfigMap says {conf_mode})" if conf_mode and conf_mode != mode else ""
    if mode is None:
        return Check(
            "kube-proxy", "kube-proxy mode", f"no kube-proxy rules{said}", "unknown",
            "no KUBE-SERVICES chain, no `ip kube-proxy` nftables table and no kube-ipvs0: another "
            "service proxy (or none) handles Services here, which the doctor does not check",
            data=data_,
        )  # fmt: skip
    if mode == "iptables":
        value = (
            "iptables, INVALID drop in KUBE-FORWARD" if drop else "iptables, no INVALID drop in KUBE-FORWARD"
        )
    else:
        value = f"{mode} (this mode installs no INVALID drop)"
    value += said
    if drop:
        return Check(
            "kube-proxy", "kube-proxy mode", value, "ok",
            "KUBE-FORWARD drops INVALID packets (kube-proxy PR #74840), so their RST never reaches the "
            "pod; only forwarded traffic is covered, not traffic delivered locally (kubernetes#117924)",
            data=data_,
        )  # fmt: skip
    if liberal:
        return Check(
            "kube-proxy", "kube-proxy mode", value, "ok",
            "no INVALID drop rule, but nf_conntrack_tcp_be_liberal=1 keeps out-of-window segments valid",
            data=data_,
        )  # fmt: skip
    why = {
        "iptables": "kube-proxy installs its INVALID drop only while be_liberal is 0 (PR #120412), "
        "and it is missing here",
        "nftables": "nftables mode has no INVALID drop (kube-proxy PR #122663)",
        "ipvs": "IPVS mode has no INVALID drop in KUBE-FORWARD",
    }[mode]
    return Check(
        "kube-proxy", "kube-proxy mode", value, "exposed", f"{why}, and be_liberal is 0",
        BE_LIBERAL_FIX, "invalid-reset", data_,
    )  # fmt: skip


def _be_liberal(facts: NodeFacts, drop: bool, conf_liberal: object) -> Check:
    value = facts.sysctl("nf_conntrack_tcp_be_liberal")
    data_ = {"value": value, "configmap": conf_liberal}
    said = ""
    if isinstance(conf_liberal, bool) and value is not None and conf_liberal != bool(value):
        said = (
            f"; kube-proxy's ConfigMap says tcpBeLiberal: {str(conf_liberal).lower()}, the node has {value}"
        )
    if value is None:
        return Check("be_liberal", "nf_conntrack_tcp_be_liberal", "?", "unknown", "not readable" + said)
    if value:
        return Check(
            "be_liberal", "nf_conntrack_tcp_be_liberal", "1", "ok",
            "only out-of-window RSTs are INVALID; measured: no offset up to +262,144 resets "
            "(docs/science.md §4)" + said, data=data_,
        )  # fmt: skip
    if drop:
        return Check(
            "be_liberal", "nf_conntrack_tcp_be_liberal", "0", "ok",
            "0, but kube-proxy's INVALID drop covers forwarded traffic" + said, data=data_,
        )  # fmt: skip
    return Check(
        "be_liberal", "nf_conntrack_tcp_be_liberal", "0", "exposed",
        "0 and no INVALID drop rule: an out-of-window segment is INVALID, skips the reverse NAT and "
        "the client's RST kills the connection" + said, BE_LIBERAL_FIX, "invalid-reset", data_,
    )  # fmt: skip


def recommended_max(new_per_s: float, held: int) -> int:
    """The table-size rule: new connections/s × 180 + held connections (docs/science.md §3)."""
    return math.ceil(new_per_s * data.TABLE_RULE_SECONDS + held)


def held_connections(new_per_s: float, peak: int) -> int:
    """The connections a node holds: its peak count less the entries its new flows leave in
    TIME_WAIT (new/s × 120 s), which the rule's 180 s already count."""
    return max(peak - math.ceil(new_per_s * data.TIME_WAIT), 0)


def _table_fix(recommended: int, cpus: int | None, conf: Mapping[str, Any]) -> str:
    per_core = f" or `conntrack.maxPerCore: {math.ceil(recommended / cpus)}` ({cpus} CPUs)" if cpus else ""
    now = ""
    if conf:
        now = f" (now maxPerCore {conf.get('maxPerCore', 'default')}, min {conf.get('min', 'default')})"
    return (
        f"raise nf_conntrack_max to at least {recommended:,} through kube-proxy's configuration: "
        f"`conntrack.min: {recommended}`{per_core}{now}; kube-proxy rewrites a hand-set sysctl "
        "when it starts"
    )


def _headroom(facts: NodeFacts, conf: Mapping[str, Any]) -> Check:
    maximum, peak, now = facts.sysctl("nf_conntrack_max"), facts.peak, facts.count_now
    if maximum is None or peak is None or now is None:
        why = facts.errors.get("count") or facts.errors.get("conntrack -S") or "count or max not readable"
        return Check("headroom", "table headroom", "?", "unknown", why)
    value = f"{now:,} now, peak {peak:,} / max {maximum:,}"
    data_: dict[str, Any] = {"count": now, "peak": peak, "max": maximum}
    if maximum == 0:
        return Check("headroom", "table headroom", value, "ok", "nf_conntrack_max=0: no limit", data=data_)
    fill = peak / maximum
    data_["fill"] = round(fill, 4)
    drops = facts.delta("drop") or 0
    new = facts.new_per_second or 0.0
    demand = recommended_max(new + (facts.rate("drop") or 0.0), held_connections(new, peak))
    wanted = max(demand, math.ceil(peak / data.HEADROOM_AT_RISK))
    fix = _table_fix(wanted, facts.cpus, conf)
    if fill >= 1 or drops:
        return Check(
            "headroom", "table headroom", value, "exposed",
            f"the table reached its max ({fill:.0%}); {drops:,} packet(s) of new flows dropped in the window",
            fix, "table-full", data_,
        )  # fmt: skip
    if fill >= data.HEADROOM_AT_RISK:
        return Check(
            "headroom", "table headroom", value, "at risk",
            f"{fill:.0%} full at its peak: a burst fills it and new flows are dropped",
            fix, "table-full", data_,
        )  # fmt: skip
    return Check("headroom", "table headroom", value, "ok", f"{fill:.0%} full at its peak", data=data_)


def _new_flows(facts: NodeFacts, conf: Mapping[str, Any]) -> Check:
    new, maximum, peak = facts.new_per_second, facts.sysctl("nf_conntrack_max"), facts.peak
    if new is None or maximum is None or peak is None:
        why = facts.errors.get("conntrack") or "conntrack's NEW events could not be counted"
        return Check("new-flows", "new flows/s", "?", "unknown", why)
    refused = facts.rate("drop") or 0.0  # a full table refuses flows: they are wanted too
    wanted = new + refused
    held = held_connections(new, peak)
    recommended = recommended_max(wanted, held)
    value = f"{_num(new)}/s" + (f" + {_num(refused)}/s refused" if refused else "")
    value += f" → max ≥ {recommended:,}"
    data_ = {
        "per_second": round(new, 3),
        "refused_per_second": round(refused, 3),
        "held": held,
        "recommended_max": recommended,
        "max": maximum,
    }
    per_s = "(new + refused)/s" if refused else "new/s"
    rule = (
        f"{per_s} × {data.TABLE_RULE_SECONDS} + held ({held:,}) = {recommended:,}, {data.TABLE_RULE_SOURCE}"
    )
    if maximum and maximum < recommended:
        return Check(
            "new-flows", "new flows/s", value, "at risk",
            f"max {maximum:,} is below the table-size rule: {rule}",
            _table_fix(recommended, facts.cpus, conf), "table-full", data_,
        )  # fmt: skip
    return Check("new-flows", "new flows/s", value, "ok", f"max {maximum:,} covers {rule}", data=data_)


def _counters(facts: NodeFacts, maximum: int | None) -> Check:
    rates = {c: facts.rate(c) for c in COUNTERS}
    have = {c: r for c, r in rates.items() if r is not None}
    if not have:
        why = facts.errors.get("conntrack -S") or "the counters could not be read"
        return Check("counters", "conntrack -S", "?", "unknown", why)
    value = ", ".join(f"{c} {_num(r)}/s" for c, r in have.items())
    data_: dict[str, Any] = {f"{c}_per_second": round(r, 3) for c, r in have.items()}
    data_.update({c: facts.delta(c) for c in have})
    if have.get("drop"):
        return Check(
            "counters", "conntrack -S", value, "exposed",
            f"the kernel drops {_num(have['drop'])} packet(s)/s of new flows: the table is full",
            f"raise nf_conntrack_max (now {maximum:,}) through kube-proxy's `conntrack.min`"
            if maximum
            else "raise nf_conntrack_max through kube-proxy's `conntrack.min`",
            "table-full", data_,
        )  # fmt: skip
    if have.get("insert_failed") or have.get("chaintoolong"):
        return Check(
            "counters", "conntrack -S", value, "at risk",
            "inserts fail: chains too long or clashes; see the hash ratio",
            "size the hash to at least max / 5 (see the buckets check)", "hash-chains", data_,
        )  # fmt: skip
    why = "no drops or failed inserts in the window"
    if have.get("early_drop"):
        why = "early_drop evicts unassured entries: the table is near full"
        return Check("counters", "conntrack -S", value, "at risk", why, "", "table-full", data_)
    return Check("counters", "conntrack -S", value, "ok", why, data=data_)


def _hash_ratio(facts: NodeFacts) -> Check:
    maximum, buckets = facts.sysctl("nf_conntrack_max"), facts.sysctl("nf_conntrack_buckets")
    if not maximum or not buckets:
        return Check("hash-ratio", "buckets vs max", "?", "unknown", "max or buckets not readable")
    ratio = maximum / buckets
    value = f"max/buckets = {maximum:,}/{buckets:,} = {ratio:.3g}"
    data_ = {"max": maximum, "buckets": buckets, "ratio": round(ratio, 3), "limit": data.HASH_RATIO_LIMIT}
    if ratio > data.HASH_RATIO_LIMIT:
        want = math.ceil(maximum / data.HASH_RATIO_LIMIT)
        return Check(
            "hash-ratio", "buckets vs max", value, "at risk",
            f"above {data.HASH_RATIO_LIMIT}, the largest safe ratio measured by {data.HASH_RATIO_SOURCE}: "
            "at 8 inserts fail (chaintoolong) with the table at a third of its max",
            f"raise the hash to at least {want:,} buckets: "
            f"`echo {want} > /sys/module/nf_conntrack/parameters/hashsize` on the node "
            "(kube-proxy raises it to max/4 only when it sets max itself)",
            "hash-chains", data_,
        )  # fmt: skip
    return Check(
        "hash-ratio", "buckets vs max", value, "ok",
        f"at most {data.HASH_RATIO_LIMIT}, the largest safe ratio measured by {data.HASH_RATIO_SOURCE}",
        data=data_,
    )  # fmt: skip


def _table_full(facts: NodeFacts) -> Check:
    before, after = facts.table_full_before, facts.table_full_after
    if after is None:
        why = facts.errors.get("table full lines") or "the kernel log could not be read"
        return Check("table-full", "table-full lines", "?", "unknown", why)
    recent = max(after - (before or 0), 0)
    value = f"{after} since boot, {recent} in the window"
    data_ = {"since_boot": after, "in_window": recent}
    if recent:
        return Check(
            "table-full", "table-full lines", value, "exposed",
            "the kernel logged `nf_conntrack: table full, dropping packet` during the window",
            "raise nf_conntrack_max through kube-proxy's `conntrack.min`", "table-full", data_,
        )  # fmt: skip
    if after:
        return Check(
            "table-full", "table-full lines", value, "at risk",
            "the kernel logged `table full, dropping packet` since boot: the table has been full before",
            "raise nf_conntrack_max through kube-proxy's `conntrack.min`", "table-full", data_,
        )  # fmt: skip
    return Check("table-full", "table-full lines", value, "ok", "no table-full line since boot", data=data_)


def _timeouts(facts: NodeFacts) -> Check:
    close_wait = facts.sysctl("nf_conntrack_tcp_timeout_close_wait")
    established = facts.sysctl("nf_conntrack_tcp_timeout_established")
    if close_wait is None or established is None:
        return Check("timeouts", "TCP timeouts", "?", "unknown", "the timeouts could not be read")
    value = f"established {established:,} s, close_wait {close_wait:,} s"
    data_ = {"established": established, "close_wait": close_wait}
    kp = (
        f"kube-proxy sets established {data.KUBE_PROXY_ESTABLISHED:,} s (24 h) and close_wait "
        f"{data.KUBE_PROXY_CLOSE_WAIT:,} s (1 h)"
    )
    if established < data.KUBE_PROXY_ESTABLISHED:
        return Check(
            "timeouts", "TCP timeouts", value, "at risk",
            f"{kp}; a connection idle longer than {established:,} s loses its entry, and its next "
            "segment may be INVALID",
            "leave `conntrack.tcpEstablishedTimeout` at 24h (86400 s) or more in kube-proxy's configuration",
            "invalid-reset", data_,
        )  # fmt: skip
    notes = []
    if close_wait < data.KUBE_PROXY_CLOSE_WAIT:
        notes.append(f"close_wait below kube-proxy's 1 h: a half-closed connection idle longer than "
                     f"{close_wait:,} s loses its entry")  # fmt: skip
    if established > data.KUBE_PROXY_ESTABLISHED:
        notes.append("established above kube-proxy's 24 h: idle entries hold table space longer")
    return Check("timeouts", "TCP timeouts", value, "ok", "; ".join([kp, *notes]), data=data_)


def evaluate(facts: NodeFacts, kube_proxy: Mapping[str, Any] | None = None) -> NodeReport:
    """Every check of one node, from its facts and kube-proxy's configuration (None: not read)."""
    conf = _conntrack(kube_proxy)
    conf_mode = (kube_proxy or {}).get("mode") or None
    mode, drop = proxy_mode(facts)
    liberal = facts.sysctl("nf_conntrack_tcp_be_liberal") == 1
    protection = (
        "nf_conntrack_tcp_be_liberal=1" if liberal else ("kube-proxy's INVALID drop rule" if drop else None)
    )
    checks = (
        _kernel(facts, protection, mode),
        _proxy(facts, mode, drop, liberal, conf_mode),
        _be_liberal(facts, drop, conf.get("tcpBeLiberal")),
        _headroom(facts, conf),
        _new_flows(facts, conf),
        _counters(facts, facts.sysctl("nf_conntrack_max")),
        _hash_ratio(facts),
        _table_full(facts),
        _timeouts(facts),
    )
    error = None
    if facts.kernel is None and facts.stats_before is None and facts.iptables is None:
        error = "; ".join(f"{k}: {v}" for k, v in facts.errors.items()) or "nothing could be read"
    return NodeReport(facts.node, facts.kernel, checks, error)
