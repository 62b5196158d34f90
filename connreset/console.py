"""Plain console output for people: progress lines while running, a verdict table at the end."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TextIO

from connreset.engine import events as ev
from connreset.engine.results import PhaseVerdict, RunResult

_MARK = {"ok": "✓", "failed": "✗", "error": "!", "skipped": "-", "cancelled": "⊘"}


class ConsoleProgress:
    """An event subscriber printing one line per finished step, note, and undo."""

    def __init__(self, out: TextIO | None = None, verbose: bool = False) -> None:
        self._out = out
        self.verbose = verbose

    def __call__(self, event: ev.Event) -> None:
        match event:
            case ev.RunStarted():
                params = " ".join(f"{k}={v}" for k, v in event.params.items())
                self._p(f"▶ {event.experiment} on {event.backend}  {params}".rstrip())
            case ev.PhaseStarted():
                self._p(f"── phase {event.phase}")
            case ev.StepFinished() if event.status != "skipped" or self.verbose:
                detail = f"  {event.detail}" if event.detail else ""
                self._p(f"  {_MARK[event.status]} {event.step} [{event.duration_s:.2f}s]{detail}")
            case ev.StepNote():
                self._p(f"    · {event.message}")
            case ev.UndoFinished():
                ok = "✓" if event.verified else "✗"
                self._p(f"  ↶ {ok} {event.record.node}: {event.record.describe()}  ({event.detail})")
            case _:
                pass

    def _p(self, line: str) -> None:
        print(line, file=self._out or sys.stdout, flush=True)


def _short(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


def verdict_table(result: RunResult) -> str:
    """One row per phase: status, what was expected, what was found."""
    rows: list[tuple[str, str, str]] = []
    for v in result.phases:
        rows.append((v.phase, v.status.upper(), _findings(v)))
    width = max([len(r[0]) for r in rows] + [5])
    lines = [f"{'PHASE':<{width}}  {'VERDICT':<9}  FINDINGS"]
    for phase, status, found in rows:
        lines.append(f"{phase:<{width}}  {status:<9}  {found}")
    for v in result.phases:
        for failure in v.failures:
            lines.append(f"  {v.phase}: {failure}")
    undone = sum(1 for u in result.undo if u.verified)
    lines.append(
        f"outcome: {result.outcome}{' (cancelled)' if result.cancelled else ''}; "
        f"{undone}/{len(result.undo)} change(s) put back and verified"
        + (f"; journal: {result.journal}" if result.journal else "")
    )
    return "\n".join(lines)


def _findings(v: PhaseVerdict) -> str:
    if not v.findings:
        return v.expect or "-"
    return ", ".join(f"{k}={_short(val)}" for k, val in v.findings.items())


def plan_lines(phases: Sequence[tuple[str, Sequence[tuple[str, Sequence[str]]]]]) -> str:
    out = []
    for phase, steps in phases:
        out.append(f"phase {phase}")
        for name, lines in steps:
            out.append(f"  {name}")
            out.extend(f"      {line}" for line in lines)
    return "\n".join(out)
