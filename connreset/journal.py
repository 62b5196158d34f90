"""The run journal: one JSON document, rewritten atomically as the run goes.

Every write goes to a temporary file that is then renamed over the journal, so the file on disk
is always a complete JSON document: a run killed with ``-9`` leaves a usable partial journal
(``outcome`` and ``finished_at`` are then ``null``). Writes are throttled, except that an undo
record is written *before* the change it undoes is made. The schema is in docs/journal.md.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from connreset.engine import events as ev

SCHEMA_VERSION = 1
FLUSH_EVERY = 0.5  # seconds between throttled rewrites


def default_path(experiment: str, root: Path = Path(".connreset/runs")) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    return root / f"{stamp}-{experiment}-{os.getpid()}.json"


class JournalWriter:
    """An event subscriber that keeps the journal file up to date."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.doc: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "experiment": None,
            "params": {},
            "backend": None,
            "outcome": None,
            "cancelled": False,
            "started_at": None,
            "finished_at": None,
            "environment": {},
            "phases": [],
            "steps": [],
            "nodes": {},
            "samples": [],
            "findings": {},
            "undo": [],
        }
        self._t0 = time.monotonic()
        self._last_flush = 0.0
        self._undo_index: dict[int, dict[str, Any]] = {}

    def __call__(self, event: ev.Event) -> None:
        d = self.doc
        urgent = False
        match event:
            case ev.RunStarted():
                d.update(
                    experiment=event.experiment,
                    params=dict(event.params),
                    backend=event.backend,
                    started_at=event.at,
                    environment=dict(event.environment),
                )
                d["phases"] = [{"name": p, "status": "pending"} for p in event.phases]
                urgent = True
            case ev.PhaseFinished():
                for p in d["phases"]:
                    if p["name"] == event.phase:
                        p["status"] = event.status
                urgent = True
            case ev.StepFinished():
                d["steps"].append(
                    {
                        "name": event.step,
                        "kind": event.kind,
                        "phase": event.phase,
                        "status": event.status,
                        "started_at": event.at,
                        "duration_s": round(event.duration_s, 6),
                        "detail": event.detail,
                    }
                )
            case ev.Sample():
                d["samples"].append(
                    {
                        "t": round(event.t - self._t0, 4),
                        "node": event.node,
                        "metric": event.metric,
                        "value": event.value,
                    }
                )
            case ev.FindingRecorded():
                d["findings"].setdefault(event.phase, {})[event.key] = _jsonable(event.value)
            case ev.NodeInfo():
                node = d["nodes"].setdefault(
                    event.node, {"kernel": None, "sysctl_before": {}, "sysctl_after": {}}
                )
                if event.kernel:
                    node["kernel"] = event.kernel
                node["sysctl_before"].update(event.sysctl_before)
                node["sysctl_after"].update(event.sysctl_after)
            case ev.UndoRecorded():
                entry = {**event.record.to_json(), "status": "pending", "verified": None, "detail": ""}
                self._undo_index[event.record.id] = entry
                d["undo"].append(entry)
                urgent = True
            case ev.UndoFinished():
                entry = self._undo_index[event.record.id]
                entry.update(status=event.status, verified=event.verified, detail=event.detail)
                urgent = True
            case ev.RunFinished():
                d.update(outcome=event.outcome, finished_at=event.at, cancelled=event.cancelled)
                urgent = True
            case _:
                pass
        now = time.monotonic()
        if urgent or now - self._last_flush >= FLUSH_EVERY:
            self.flush()
            self._last_flush = now

    def flush(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(self.doc, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def close(self) -> None:
        self.flush()


def _jsonable(value: object) -> object:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return repr(value)


def read(path: str | Path) -> dict[str, Any]:
    """Load a journal (complete or partial)."""
    with open(path) as f:
        data: dict[str, Any] = json.load(f)
    return data


def pending_undo(journal: dict[str, Any]) -> list[dict[str, Any]]:
    """Undo entries that never completed, newest first (the order to revert them in)."""
    return [
        u for u in reversed(journal.get("undo", [])) if u.get("status") != "done" or not u.get("verified")
    ]
