"""``connreset report JOURNAL``: a Markdown summary for the terminal and a self-contained HTML report.

The HTML has inline CSS and inline SVG plots made with matplotlib (no files beside it, nothing
fetched): the experiment and the environment, the verdict per phase, and per node the conntrack
count against its max over time, with phase boundaries and failed steps marked. A journal (or a
results document) with a ``sweep`` key gets the sweep's plot too (see :func:`sweep_plot`).
"""

from __future__ import annotations

import html
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure

from connreset.errors import ValidationError
from connreset.runs.journal import read
from connreset.steps.clients import legend as curl_legend

FAILED = ("failed", "error")
_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6em 0; } th, td { padding: 4px 10px; text-align: left;
  vertical-align: top; border-bottom: 1px solid #eee; } th { background: #f6f6f6; }
.passed { color: #17803d; font-weight: bold; } .failed, .error { color: #c0262d; font-weight: bold; }
.skipped, .pending, .cancelled { color: #777; } code, .mono { font-family: ui-monospace, monospace; }
figure { margin: 1em 0; } figcaption { color: #555; }
.claim-confirmed { color: #17803d; font-weight: bold; } .claim-refuted { color: #c0262d; font-weight: bold; }
.claim-not-seen { color: #777; font-weight: bold; } .conclusion { font-weight: bold; margin: 0 0 0.3em; }
.expect { color: #555; margin: 0 0 0.3em; } q { color: #555; font-style: italic; }
"""


def _fmt(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else json.dumps(value)


def series(doc: Mapping[str, Any], node: str, metric: str) -> list[tuple[float, float]]:
    """A node's samples of one metric, as (t, value), in time order."""
    return sorted(
        (float(s["t"]), float(s["value"]))
        for s in doc.get("samples", [])
        if s["node"] == node and s["metric"] == metric and s.get("t") is not None
    )


def nodes(doc: Mapping[str, Any]) -> list[str]:
    """Nodes that have samples, in name order."""
    return sorted({s["node"] for s in doc.get("samples", [])})


def node_table(doc: Mapping[str, Any]) -> list[dict[str, object]]:
    """Per node: samples, peak count, max (last sampled), and the last drop and invalid counters."""
    rows: list[dict[str, object]] = []
    for node in nodes(doc):
        count = series(doc, node, "conntrack_count")
        row: dict[str, object] = {"node": node, "samples": len(count)}
        row["peak"] = max((v for _, v in count), default=None)
        for key in ("max", "drop", "invalid"):
            values = series(doc, node, f"conntrack_{key}")
            row[key] = values[-1][1] if values else None
        rows.append(row)
    return rows


def _cell(value: object) -> str:
    return "-" if value is None else _fmt(value)


def _env_items(env: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The environment's entries; the lab's ``cluster`` (its kube-proxy only) as ``kube-proxy``."""
    items = []
    for k, v in env.items():
        if k == "cluster" and isinstance(v, Mapping) and set(v) == {"kube_proxy"}:
            items.append(("kube-proxy", v["kube_proxy"]))
        else:
            items.append((k, v))
    return items


def markdown(doc: Mapping[str, Any]) -> str:
    """A summary for the terminal: outcome, environment, verdict per phase, nodes, undo."""
    env = doc.get("environment", {})
    params = ", ".join(f"{k}={v}" for k, v in doc.get("params", {}).items()) or "none"
    outcome = doc.get("outcome") or "unfinished"
    lines = [
        f"# {doc.get('experiment')}: {outcome}{' (cancelled)' if doc.get('cancelled') else ''}",
        "",
        f"- run `{doc.get('run_id')}` on `{doc.get('testbed')}`, {doc.get('started_at')} → "
        f"{doc.get('finished_at') or 'not finished'}",
        f"- parameters: {params}",
        "- environment: " + ", ".join(f"{k} {v}" for k, v in _env_items(env)),
        *(["", str(doc["description"]).strip()] if doc.get("description") else []),
        "",
        "| phase | verdict | findings |",
        "|---|---|---|",
    ]
    findings = doc.get("findings", {})
    for phase in doc.get("phases", []):
        found = " · ".join(f"{k}: {_fmt(v)}" for k, v in findings.get(phase["name"], {}).items())
        said = f"{phase['conclusion']} · " if phase.get("conclusion") else ""
        said = (f"expected: {phase['expect']} · " if phase.get("expect") else "") + said
        lines.append(f"| {phase['name']} | {phase['status'].upper()} | {said}{found or '-'} |")
    if any("curl_errors" in f for f in findings.values()):
        lines += ["", f"curl codes: {curl_legend()}"]
    claims = doc.get("claims", [])
    if claims:
        lines += ["", "| claim | phase | verdict | evidence |", "|---|---|---|---|"]
        for c in claims:
            cols = (c.get("claim"), c.get("phase"), str(c.get("verdict", "")).upper(), c.get("evidence"))
            lines.append("| " + " | ".join(str(x).replace("|", "/") for x in cols) + " |")
    failed = [s for s in doc.get("steps", []) if s.get("status") in FAILED]
    if failed:
        lines += ["", "Failed steps:"]
        lines += [f"- {s['phase']} / {s['name']}: {s['status']}: {s.get('detail', '')}" for s in failed]
    table = node_table(doc)
    if table:
        lines += ["", "| node | samples | peak count | max | drop | invalid |", "|---|---|---|---|---|---|"]
        for row in table:
            cells = (row["node"], row["samples"], row["peak"], row["max"], row["drop"], row["invalid"])
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    undo = doc.get("undo", [])
    verified = sum(1 for u in undo if u.get("verified"))
    lines += ["", f"Undo: {verified}/{len(undo)} change(s) put back and verified."]
    if doc.get("pending"):
        lines.append("Pending (put back with `connreset restore`): " + "; ".join(doc["pending"]))
    return "\n".join(lines)


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "connreset", "svg.fonttype": "none"}):  # stable, text
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg") :]  # inline: without the XML declaration and doctype


def node_plot(doc: Mapping[str, Any], node: str) -> str:
    """One node's conntrack count and max over time, phases and failed steps marked; inline SVG."""
    return _svg(node_figure(doc, node))


def node_figure(doc: Mapping[str, Any], node: str) -> Figure:
    """The figure of :func:`node_plot` (to save as PNG, say)."""
    fig = Figure(figsize=(10, 3.2))
    ax = fig.add_subplot()
    count = series(doc, node, "conntrack_count")
    if count:
        ax.plot(
            [t for t, _ in count], [v for _, v in count], color="#1f6feb", lw=1.4, label="conntrack count"
        )
    limits = series(doc, node, "conntrack_max")
    if limits:
        end = max([t for t, _ in count] + [t for t, _ in limits])
        xs = [t for t, _ in limits] + [end]
        ys = [v for _, v in limits] + [limits[-1][1]]
        ax.step(xs, ys, where="post", color="#c0262d", lw=1.2, ls="--", label="nf_conntrack_max")
    for phase in doc.get("phases", []):
        if phase.get("started_t") is not None:
            ax.axvline(phase["started_t"], color="#888", lw=0.8, ls=":")
            ax.annotate(
                phase["name"],
                (phase["started_t"], 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(3, -12),
                textcoords="offset points",
                fontsize=8,
                color="#555",
            )
    for step in doc.get("steps", []):
        if step.get("status") in FAILED and step.get("t") is not None:
            ax.axvline(step["t"], color="#c0262d", lw=1.2)
            ax.annotate(
                f"✗ {step['name']}",
                (step["t"], 0.5),
                xycoords=("data", "axes fraction"),
                xytext=(3, 0),
                textcoords="offset points",
                fontsize=8,
                color="#c0262d",
            )
    drops = series(doc, node, "conntrack_drop")
    if drops and any(v for _, v in drops):  # beside the count: what the full table cost
        twin = ax.twinx()
        twin.plot(
            [t for t, _ in drops],
            [v for _, v in drops],
            color="#d97706",
            lw=1.0,
            marker="o",
            ms=3,
            label="dropped (conntrack -S drop, cumulative)",
        )
        twin.set_ylabel("dropped", color="#d97706")
        twin.legend(loc="upper left", fontsize=8)
    ax.set_xlabel("seconds since the run started")
    ax.set_ylabel("entries")
    ax.set_title(f"{node}: conntrack count against its max")
    ax.grid(alpha=0.3)
    values = [v for _, v in count + limits if v > 0]
    if values and max(values) / min(values) > 50:  # a max far above the count: both stay readable
        ax.set_yscale("log")
    if count or limits:
        ax.legend(loc="lower right", fontsize=8)
    return fig


def sweep_plot(sweep: Mapping[str, Any]) -> str:
    """The sweep's plot: each trial's outcome against the swept parameter; inline SVG.

    ``sweep`` is ``{"parameter": NAME, "trials": [{"value": V, "outcome": "passed"|...}, ...],
    "boundary": TEXT}`` (the shape a sweep's results are expected to carry; this is the hook).
    """
    fig = Figure(figsize=(10, 2.6))
    ax = fig.add_subplot()
    trials = list(sweep.get("trials", []))
    kinds = (
        ("passed", "#17803d", 1, "o"),
        ("failed", "#c0262d", 0, "o"),
        ("inconclusive", "#8a8a8a", 0.5, "x"),
    )
    for outcome, colour, y, marker in kinds:
        xs = [float(t["value"]) for t in trials if t.get("outcome") == outcome]
        if xs or outcome != "inconclusive":
            ax.scatter(xs, [y] * len(xs), color=colour, marker=marker, label=outcome, zorder=3)
    ax.set_yticks([0, 0.5, 1], labels=["failed", "inconclusive", "passed"])
    ax.set_xlabel(str(sweep.get("parameter", "parameter")))
    ax.set_title(f"sweep: {len(trials)} trial(s); boundary: {sweep.get('boundary') or 'not found'}")
    ax.grid(alpha=0.3)
    return _svg(fig)


def _e(value: object) -> str:
    return html.escape(_cell(value))


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    out = [f'<table class="{cls}"><tr>' + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows]
    return "\n".join(out) + "</table>"


def report(journal: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> str:
    """Read a journal (summary or lines); write the HTML report to ``out`` if given; return the
    Markdown summary.

    Raises:
        ValidationError: ``out`` cannot be written (its directory is missing; checked before
            anything is read or written), or the journal cannot be read.
        OSError: writing ``out`` failed all the same (e.g. the disk is full).
    """
    if out is not None:
        _check_out(Path(out))
    from connreset.doctor import report as doctor_report

    found = doctor_report.load(journal)
    doc = read(journal) if found is None else {}
    found = found or doctor_report.from_journal(doc)
    if found is not None:  # a doctor's --json, or its run's journal
        if out is not None:
            Path(out).write_text(doctor_report.html_page(found), encoding="utf-8")
        return doctor_report.markdown(found)
    sweep = "boundaries" in doc and "vary" in doc  # a sweep's results.json
    try:  # rendered before anything is written
        text = sweep_markdown(doc) if sweep else markdown(doc)
        page = (sweep_html(doc) if sweep else html_report(doc)) if out is not None else None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        what = "sweep results" if sweep else "journal"
        raise ValidationError(f"{journal}: not a connreset {what} ({type(exc).__name__}: {exc})") from None
    if out is not None and page is not None:
        Path(out).write_text(page, encoding="utf-8")
    return text


def _check_out(out: Path) -> None:
    """Refuse an output path whose directory is missing or not writable, or that is a directory."""
    folder, refused = out.parent, f"cannot write the HTML report to {out}"
    if out.is_dir():
        raise ValidationError(f"{refused}: it is a directory")
    if not folder.is_dir():
        missing = "is not a directory" if folder.exists() else "does not exist"
        raise ValidationError(f"{refused}: the directory {folder} {missing}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValidationError(f"{refused}: the directory {folder} is not writable")


def _workload(workload: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in workload.items()) or "defaults"


def sweep_trials(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A sweep's results.json in the shape :func:`sweep_plot` draws."""
    vary = str(doc["vary"])
    lines = [str(r.get("line", "")) for r in doc.get("recommendation", []) if r.get("line")]
    return {
        "parameter": vary,
        "trials": [
            {
                "value": t["params"][vary],
                "outcome": "inconclusive" if t["holds"] is None else "passed" if t["holds"] else "failed",
            }
            for t in doc["trials"]
        ],
        "boundary": "; ".join(
            f"{_workload(b['workload'])}: {b['last_failing']} fails, {b['first_holding']} holds"
            for b in doc["boundaries"]
        )
        or (lines[0] if lines else ""),
    }


def sweep_markdown(doc: Mapping[str, Any]) -> str:
    """A sweep's results, for the terminal: boundaries, recommendations, confirmations."""
    out = [f"# sweep {doc['sweep']}: {doc['vary']}", ""]
    out.append("| workload | last failing | first holding | trials | complete | confidence |")
    out.append("|---|---|---|---|---|---|")
    for b in doc["boundaries"]:
        out.append(
            f"| {_workload(b['workload'])} | {_cell(b['last_failing'])} | {_cell(b['first_holding'])} | "
            f"{b['trials']} | {_cell(b['complete'])} | {b.get('confidence', 'confirmed')} |"
        )
    out += ["", *(f"- {r['line']}" for r in doc.get("recommendation", []) if r.get("line"))]
    out += [f"- confirmation: {c['line']}" for c in doc.get("confirmation", []) if c.get("line")]
    if doc.get("cut"):
        out += ["", f"Cut: {doc['cut']}"]
    if doc.get("interrupted"):
        out += ["", _interrupted(doc)]
    return "\n".join(out)


def _interrupted(doc: Mapping[str, Any]) -> str:
    return (
        f"Interrupted after {len(doc['trials'])} trial(s): the boundaries are as far as those trials "
        "settle them (complete: no, where they did not), and recommendations come only from complete ones."
    )


def sweep_html(doc: Mapping[str, Any]) -> str:
    """A sweep's results as one self-contained page, with the sweep's plot."""
    rows = [
        [_e(_workload(b["workload"])), _e(b["last_failing"]), _e(b["first_holding"]), _e(b["trials"])]
        for b in doc["boundaries"]
    ]
    recs = "".join(
        f"<li>{html.escape(str(r['line']))}</li>" for r in doc.get("recommendation", []) if r.get("line")
    )
    confirm = "".join(
        f"<li>{html.escape(str(c['line']))}</li>" for c in doc.get("confirmation", []) if c.get("line")
    )
    first = str(doc.get("description") or "").strip().splitlines()[:1]
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>sweep {_e(doc['sweep'])}</title>"
        f"<style>{_CSS}</style></head><body>",
        f"<h1>sweep {_e(doc['sweep'])}</h1><p>{_e(first[0] if first else '')}</p>",
        *([f'<p class="interrupted">{_e(_interrupted(doc))}</p>'] if doc.get("interrupted") else []),
        '<h2 id="boundaries">Boundaries</h2>',
        _table(["workload", "last failing", "first holding", "trials"], rows, "boundaries"),
        f'<h2 id="recommendation">Recommendation</h2><ul>{recs}</ul>',
        *([f"<h2>Confirmation</h2><ul>{confirm}</ul>"] if confirm else []),
        '<h2 id="sweep">Sweep</h2>',
        f'<figure class="plot sweep">{sweep_plot(sweep_trials(doc))}</figure>',
        "</body></html>",
    ]
    return "\n".join(parts)


def html_report(doc: Mapping[str, Any]) -> str:
    """The whole report as one HTML document (inline CSS and SVG)."""
    outcome = doc.get("outcome") or "unfinished"
    env = doc.get("environment", {})
    facts = [
        ("experiment", doc.get("experiment")),
        ("outcome", outcome + (" (cancelled)" if doc.get("cancelled") else "")),
        ("run id", doc.get("run_id")),
        ("testbed", doc.get("testbed")),
        ("parameters", ", ".join(f"{k}={v}" for k, v in doc.get("params", {}).items()) or "none"),
        ("started", doc.get("started_at")),
        ("finished", doc.get("finished_at")),
        *_env_items(env),
        *((f"{n} kernel", v.get("kernel")) for n, v in doc.get("nodes", {}).items()),
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>connreset report: {html.escape(str(doc.get('experiment')))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f'<h1>{html.escape(str(doc.get("experiment")))}: <span class="{outcome}">{outcome}</span></h1>',
        '<h2 id="environment">Experiment and environment</h2>',
        _table(["", ""], [[html.escape(k), f'<span class="mono">{_e(v)}</span>'] for k, v in facts], "facts"),
        *(
            [f'<pre class="description">{html.escape(str(doc["description"]).strip())}</pre>']
            if doc.get("description")
            else []
        ),
        '<h2 id="verdicts">Verdict per phase</h2>',
    ]
    findings = doc.get("findings", {})
    rows = []
    for phase in doc.get("phases", []):
        found = "<br>".join(f"{html.escape(k)}: {_e(v)}" for k, v in findings.get(phase["name"], {}).items())
        status = html.escape(phase["status"])
        if phase.get("conclusion"):
            found = f'<p class="conclusion">{html.escape(phase["conclusion"])}</p>{found}'
        expect = (
            f'<p class="expect">expected: {html.escape(phase["expect"])}</p>' if phase.get("expect") else ""
        )
        rows.append(
            [html.escape(phase["name"]), f'<span class="{status}">{status.upper()}</span>', expect + found]
        )
    parts.append(_table(["phase", "verdict", "findings"], rows, "verdicts"))
    if any("curl_errors" in f for f in findings.values()):
        parts.append(f'<p class="legend">curl codes: {html.escape(curl_legend())}</p>')
    claims = doc.get("claims", [])
    if claims:
        parts.append('<h2 id="claims">Claims</h2>')
        rows = []
        for c in claims:
            verdict = str(c.get("verdict", ""))
            quote = f"<br><q>{html.escape(str(c.get('quote', '')))}</q>" if c.get("quote") else ""
            rows.append(
                [
                    html.escape(str(c.get("claim", ""))) + quote,
                    html.escape(str(c.get("phase", ""))),
                    f'<span class="claim-{verdict.replace(" ", "-")}">{html.escape(verdict.upper())}</span>',
                    html.escape(str(c.get("evidence", ""))),
                ]
            )
        parts.append(_table(["claim", "phase", "verdict", "evidence"], rows, "claims"))
    failed = [s for s in doc.get("steps", []) if s.get("status") in FAILED]
    if failed:
        parts.append("<h3>Failed steps</h3>")
        parts.append(
            _table(
                ["phase", "step", "status", "detail"],
                [[html.escape(str(s[k])) for k in ("phase", "name", "status", "detail")] for s in failed],
                "failures",
            )
        )
    table = node_table(doc)
    if table:
        parts.append('<h2 id="nodes">Conntrack per node</h2>')
        head = ["node", "samples", "peak count", "max", "drop", "invalid"]
        keys = ("node", "samples", "peak", "max", "drop", "invalid")
        parts.append(_table(head, [[_e(row[k]) for k in keys] for row in table], "nodes"))
        for row in table:
            node = str(row["node"])
            parts.append(
                f'<figure class="plot" data-node="{html.escape(node)}">{node_plot(doc, node)}'
                f"<figcaption>{html.escape(node)}: conntrack count against nf_conntrack_max; dotted lines: "
                "phases begin; red lines: failed steps; orange: new flows dropped</figcaption></figure>"
            )
    sweep = doc.get("sweep")
    if isinstance(sweep, Mapping):
        parts.append('<h2 id="sweep">Sweep</h2>')
        parts.append(f'<figure class="plot sweep">{sweep_plot(sweep)}</figure>')
    undo = doc.get("undo", [])
    parts.append('<h2 id="undo">Undo</h2>')
    parts.append(
        _table(
            ["node", "what", "status", "verified"],
            [
                [_e(u.get("node")), _e(u.get("description")), _e(u.get("status")), _e(u.get("verified"))]
                for u in undo
            ],
            "undo",
        )
    )
    parts.append("</body></html>")
    return "\n".join(parts)
