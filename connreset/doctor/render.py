"""The doctor's report for people: a table per node, then a summary with the fix that covers it."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

from connreset.doctor.model import MECHANISMS, DoctorReport, NodeReport

_WIDTH = 110
_FIX = {
    "invalid-reset": "set `conntrack.tcpBeLiberal: true` in kube-proxy's configuration: it sets "
    "nf_conntrack_tcp_be_liberal=1 on every node, in every proxy mode (docs/kubernetes.md, "
    '"Applying the doctor\'s recommendations")',
    "table-full": "raise nf_conntrack_max through kube-proxy's `conntrack.min` (or `maxPerCore`) "
    "to the largest recommended max below",
    "hash-chains": "raise the hash (`/sys/module/nf_conntrack/parameters/hashsize`) to at least max / 5",
}


def _wrap(text: str, indent: int, width: int = _WIDTH) -> list[str]:
    return textwrap.wrap(text, width - indent) or [""]


def node_table(node: NodeReport) -> str:
    """One node's checks: CHECK, VERDICT, VALUE, then why and the fix beneath."""
    head = f"{node.node}  ({node.kernel or 'kernel ?'}): {node.verdict.upper()}"
    if node.error:
        return f"{head}\n  not read: {node.error}"
    name_w = max(len(c.title) for c in node.checks)
    lines = [head, f"  {'CHECK':<{name_w}}  {'VERDICT':<8}  VALUE"]
    pad = " " * (2 + name_w + 2 + 8 + 2)
    for c in node.checks:
        value = _wrap(c.value, len(pad))
        lines.append(f"  {c.title:<{name_w}}  {c.verdict:<8}  {value[0]}")
        lines += [pad + v for v in value[1:]]
        lines += [pad + w for w in _wrap("why: " + c.why, len(pad))]
        if c.fix and c.at_risk:
            lines += [pad + w for w in _wrap("fix: " + c.fix, len(pad))]
    return "\n".join(lines)


def summary(report: DoctorReport) -> str:
    """Which nodes are exposed to which mechanism, and the one fix that covers them."""
    lines = [f"doctor on {report.testbed}: {len(report.nodes)} node(s), {report.window:g} s window"]
    exposed = report.exposed()
    if not exposed:
        lines.append("nothing at risk" if report.exit_code == 0 else "nothing at risk among the nodes read")
    for mechanism, nodes in exposed.items():
        verdicts = [n.exposed_to()[mechanism] for n in report.nodes if n.node in nodes]
        worst = "exposed" if "exposed" in verdicts else "at risk"
        lines.append(f"{worst} to {mechanism} ({MECHANISMS[mechanism]}): {', '.join(nodes)}")
        lines += ["  " + w for w in _wrap("fix: " + _fix(mechanism, report), 2)]
    unread = [n.node for n in report.nodes if n.error]
    if unread:
        lines.append(f"not read: {', '.join(unread)}")
    for what in report.created:
        lines.append(f"made to read the nodes: {what}")
    return "\n".join(lines)


def _fix(mechanism: str, report: DoctorReport) -> str:
    text = _FIX[mechanism]
    if mechanism == "table-full":
        checks = [c for n in report.nodes for c in n.checks if c.name == "new-flows"]
        wanted = [_int(c.data.get("recommended_max")) for c in checks]
        best = max((w for w in wanted if w), default=None)
        if best:
            text += f" (≥ {best:,}: `conntrack.min: {best}`)"
    return text


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def render(report: DoctorReport) -> str:
    """Every node's table, then the summary."""
    return "\n\n".join([*(node_table(n) for n in report.nodes), summary(report)])


def kube_proxy_line(conf: Mapping[str, object] | None) -> str:
    if conf is None:
        return "kube-proxy's ConfigMap: not read (no Kubernetes API, absent, or not allowed)"
    return f"kube-proxy's ConfigMap: mode {conf.get('mode')}, conntrack {conf.get('conntrack')}"
