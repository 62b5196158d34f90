"""Plain console output for people: progress lines while running, a verdict table at the end."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Sequence
from typing import TextIO

from connreset import events as ev
from connreset.engine.results import RunResult

_MARK = {"ok": "✓", "failed": "✗", "error": "!", "skipped": "-", "cancelled": "⊘"}


class ConsoleProgress:
    """An event subscriber printing one line per finished step, note, and undo."""

    def __init__(self, out: TextIO | None = None, verbose: int = 0) -> None:
        self._out = out
        self.verbose = verbose

    def __call__(self, event: ev.Event) -> None:
        match event:
            case ev.RunStarted():
                params = " ".join(f"{k}={v}" for k, v in event.params.items())
                self._p(f"▶ {event.experiment} on {event.testbed}  {params}".rstrip())
            case ev.PhaseStarted():
                self._p(f"── phase {event.phase}")
            case ev.StepFinished() if event.status != "skipped" or self.verbose:
                detail = f"  {event.detail}" if event.detail else ""
                self._p(f"  {_MARK[event.status]} {event.step} [{event.duration_s:.2f}s]{detail}")
            case ev.PodLog() if self.verbose >= 2:
                self._p(f"    {event.pod}: {event.line}")
            case ev.StepNote():
                self._p(f"    · {event.message}")
            case ev.Progress():
                detail = f"  {event.detail}" if event.detail else ""
                self._p(f"    … {event.step}: {event.done:g}/{event.total:g} {event.unit}{detail}")
            case ev.SweepProgress():
                params = " ".join(f"{k}={v}" for k, v in event.params.items())
                boundary = f"; boundary: {event.boundary}" if event.boundary else ""
                last = f" ({event.last})" if event.last else ""
                self._p(f"◆ sweep {event.done}/{event.planned}{last}: {params}{boundary}")
            case ev.UndoFinished():
                ok = "✓" if event.verified else "✗"
                self._p(f"  ↶ {ok} {event.record.node}: {event.record.describe()}  ({event.detail})")
            case _:
                pass

    def _p(self, line: str) -> None:
        print(line, file=self._out or sys.stdout, flush=True)


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
        found = " · ".join(f"{k}: {_value(val)}" for k, val in v.findings.items())
        if found:
            lines += textwrap.wrap(found, width, initial_indent=indent, subsequent_indent=indent)
        for failure in v.failures:
            lines += textwrap.wrap(
                f"✗ {failure}", width, initial_indent=indent, subsequent_indent=indent + "  "
            )
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
