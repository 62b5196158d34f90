"""Plain console output for people: progress lines while running, a verdict table at the end."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from connreset import events as ev
from connreset.engine.results import RunResult
from connreset.experiment.claims import claims_table
from connreset.steps.clients import legend as curl_legend

if TYPE_CHECKING:
    from connreset.sweep import SweepResult

_MARK = {"ok": "✓", "failed": "✗", "error": "!", "skipped": "-", "cancelled": "⊘"}


class ConsoleProgress:
    """An event subscriber printing one line per finished step, note, and undo, and progress lines
    for long steps and sweeps.

    With ``runs=False`` (a sweep's trials, unless verbose) it leaves out each run's own lines:
    what remains is progress, steps that ended in error and undos that could not be verified.
    """

    def __init__(self, out: TextIO | None = None, verbose: int = 0, *, runs: bool = True) -> None:
        self._out = out
        self.verbose = verbose
        self.runs = runs

    def __call__(self, event: ev.Event) -> None:
        match event:
            case ev.Progress():
                detail = f"  {event.detail}" if event.detail else ""
                self._p(f"    … {event.step}: {event.done:g}/{event.total:g} {event.unit}{detail}")
            case ev.SweepProgress():
                self._p(sweep_line(event))
            case ev.StepFinished() if not self.runs and event.status == "error":
                self._p(f"  {_MARK[event.status]} {event.step} [{event.duration_s:.2f}s]  {event.detail}")
            case ev.UndoFinished() if not self.runs and not event.verified:
                self._p(f"  ↶ ✗ {event.record.node}: {event.record.describe()}  ({event.detail})")
            case _ if self.runs:
                self._run_line(event)
            case _:
                pass

    def _run_line(self, event: ev.Event) -> None:
        match event:
            case ev.RunStarted():
                params = " ".join(f"{k}={v}" for k, v in event.params.items())
                cluster = event.environment.get("cluster")
                proxy = cluster.get("kube_proxy") if isinstance(cluster, dict) else None
                if isinstance(proxy, dict):  # the kubernetes backend's: its ConfigMap's mode and conntrack
                    proxy = proxy.get("mode")
                self._p(f"▶ {event.experiment} on {event.testbed}  {params}".rstrip())
                if proxy:
                    self._p(f"  kube-proxy: {proxy}")
            case ev.PhaseStarted():
                self._p(f"── phase {event.phase}")
            case ev.StepFinished() if event.status != "skipped" or self.verbose:
                detail = f"  {event.detail}" if event.detail else ""
                self._p(f"  {_MARK[event.status]} {event.step} [{event.duration_s:.2f}s]{detail}")
            case ev.PodLog() if self.verbose >= 2:
                self._p(f"    {event.pod}: {event.line}")
            case ev.StepNote():
                self._p(f"    · {event.message}")
            case ev.UndoFinished():
                ok = "✓" if event.verified else "✗"
                self._p(f"  ↶ {ok} {event.record.node}: {event.record.describe()}  ({event.detail})")
            case _:
                pass

    def _p(self, line: str) -> None:
        print(line, file=self._out or sys.stdout, flush=True)


def sweep_line(event: ev.SweepProgress) -> str:
    """``◆ sweep 3/8: max=600: fails [11.2s]; boundary so far: max 600 fails, 4800 holds; now max=2700``:
    trials done of at most how many, how the last one came out, the boundary, the trial beginning."""
    parts = [event.last] if event.last else []
    if event.boundary:
        parts.append(f"boundary{' so far' if event.params else ''}: {event.boundary}")
    if event.params:
        parts.append("now " + " ".join(f"{k}={v}" for k, v in event.params.items()))
    return f"◆ sweep {event.done}/{event.planned}: {'; '.join(parts) or 'begins'}"


def trial_error(exc: Exception) -> str:
    """A sweep's trial ended in error (a TrialError)."""
    return f"a trial ended in error, so the sweep stopped: {exc}"


def sweep_stopped(
    result: SweepResult, trial: RunResult | None, written: Sequence[Path], error: str = ""
) -> list[str]:
    """What a stopped sweep left, in lines: the undos of the trial in flight, and the results
    written."""
    if trial is None:
        lines = ["no trial was in flight"]
    else:
        params = ", ".join(f"{k}={v}" for k, v in trial.params.items())
        verified = sum(1 for u in trial.undo if u.verified)
        lines = [
            f"the trial in flight ({params}) put back {verified}/{len(trial.undo)} change(s), verified"
            + (f"; journal: {trial.journal}" if trial.journal else "")
        ]
        if trial.pending:
            lines.append(f"{len(trial.pending)} change(s) were not put back:")
            lines += [f"  {p}" for p in trial.pending]
            lines.append(f"put them back with: connreset restore {trial.journal or 'JOURNAL'}")
    done = f"{len(result.trials)} trial(s) ended"
    if written:
        lines.append(f"{done}; the results so far (marked interrupted): {', '.join(map(str, written))}")
    elif error:
        lines.append(f"{done}; the results could not be written: {error}")
    else:
        lines.append(f"{done}; no results written (no output directory)")
    return lines


def _value(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items())
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value if isinstance(value, str) else json.dumps(value)


def verdict_table(result: RunResult, width: int = 100) -> str:
    """One row per phase (verdict, what was expected), its findings wrapped beneath it."""
    name_w = max([len(v.phase) for v in result.phases] + [5])
    indent = " " * (name_w + 2 + 9 + 2)
    lines = [f"{'PHASE':<{name_w}}  {'VERDICT':<9}  EXPECTED / FOUND"]
    for v in result.phases:
        lines.append(f"{v.phase:<{name_w}}  {v.status.upper():<9}  {v.expect or '-'}")
        said = result.conclusions.get(v.phase)
        if said:
            lines += textwrap.wrap(f"⇒ {said}", width, initial_indent=indent, subsequent_indent=indent + "  ")
        found = " · ".join(f"{k}: {_value(val)}" for k, val in v.findings.items())
        if found:
            lines += textwrap.wrap(found, width, initial_indent=indent, subsequent_indent=indent)
        for failure in v.failures:
            lines += textwrap.wrap(
                f"✗ {failure}", width, initial_indent=indent, subsequent_indent=indent + "  "
            )
    if any("curl_errors" in v.findings for v in result.phases):
        lines += textwrap.wrap(f"curl codes: {curl_legend()}", width, subsequent_indent="  ")
    if result.claims:
        lines += ["", claims_table(result.claims, width), ""]
    run_error = result.findings.get("_run", {}).get("error")
    if run_error:
        lines.append(f"run error: {run_error}")
    undone = sum(1 for u in result.undo if u.verified)
    lines.append(
        f"outcome: {result.outcome}{' (cancelled)' if result.cancelled else ''}; "
        f"{undone}/{len(result.undo)} change(s) put back and verified"
        + (f"; journal: {result.journal}" if result.journal else "")
    )
    return "\n".join(lines)


def plan_lines(phases: Sequence[tuple[str, Sequence[tuple[str, Sequence[str]]]]]) -> str:
    out = []
    for phase, steps in phases:
        out.append(f"phase {phase}")
        for name, lines in steps:
            out.append(f"  {name}")
            out.extend(f"      {line}" for line in lines)
    return "\n".join(out)
