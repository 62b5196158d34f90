"""``connreset report`` for a doctor result: its ``--json`` output, or the journal of its run."""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from connreset.doctor.model import DoctorReport, NodeReport, is_doctor_json
from connreset.doctor.render import kube_proxy_line, render
from connreset.doctor.run import PHASE


def load(path: str | os.PathLike[str]) -> DoctorReport | None:
    """The doctor report a file holds (its ``--json``), or None when it is something else."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    return DoctorReport.from_json(data) if is_doctor_json(data) else None


def from_journal(doc: Mapping[str, Any]) -> DoctorReport | None:
    """The doctor report in a doctor run's journal (None: not a doctor run)."""
    if doc.get("experiment") != "doctor":
        return None
    found = (doc.get("findings") or {}).get(PHASE) or {}
    nodes = [NodeReport.from_json(v) for v in found.values() if isinstance(v, dict)]
    window = found.get("window")
    window = float(window) if isinstance(window, (int, float)) and window > 0 else 1.0
    cluster = ((doc.get("environment") or {}).get("cluster") or {}).get("kube_proxy")
    return DoctorReport(
        str(doc.get("testbed") or "?"), window, str(doc.get("started_at") or "?"), nodes, cluster,
        doc.get("run_id"),
    )  # fmt: skip


def markdown(report: DoctorReport) -> str:
    return "\n".join(["```", render(report), kube_proxy_line(report.kube_proxy), "```"])


def html_page(report: DoctorReport) -> str:
    rows = []
    for node in report.nodes:
        rows.append(f"<h2>{html.escape(node.node)} ({html.escape(node.kernel or '?')}): {node.verdict}</h2>")
        rows.append("<table><tr><th>check</th><th>verdict</th><th>value</th><th>why</th><th>fix</th></tr>")
        for c in node.checks:
            cls = {"exposed": "failed", "at risk": "error", "ok": "passed"}.get(c.verdict, "skipped")
            rows.append(
                f"<tr><td>{html.escape(c.title)}</td><td class='{cls}'>{c.verdict}</td>"
                f"<td class='mono'>{html.escape(c.value)}</td><td>{html.escape(c.why)}</td>"
                f"<td>{html.escape(c.fix if c.at_risk else '')}</td></tr>"
            )
        rows.append("</table>")
    from connreset.doctor.render import summary

    return (
        "<!doctype html><meta charset='utf-8'><title>connreset doctor</title>"
        "<style>body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px}"
        "td,th{padding:4px 10px;text-align:left;vertical-align:top;border-bottom:1px solid #eee}"
        ".passed{color:#17803d}.failed,.error{color:#c0262d;font-weight:bold}.mono{font-family:monospace}"
        "</style>"
        f"<h1>connreset doctor on {html.escape(report.testbed)}</h1>"
        f"<pre>{html.escape(summary(report))}</pre>" + "".join(rows)
    )
