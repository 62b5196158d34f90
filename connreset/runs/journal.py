"""The run journal: append-only JSON Lines while a run goes, one summary document at its end.

While the run goes, each event is one line appended to the file (buffered; flushed at least every
half second). An undo record is appended *and fsynced* before the change it undoes is made: if
that fails, the engine does not make the change. So the cost per event stays flat however long
the run, and a run killed with ``-9`` leaves every undo it recorded on disk.

When the run ends, the lines are folded into the summary document described in
``docs/journal.md`` and written over the file (a temporary file, fsync, rename). :func:`read`
reads either form. Journals are created 0600, in directories created 0700.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import IO, Any

from connreset import events as ev
from connreset._support.private import private_dir
from connreset._support.redact import redact_deep
from connreset.errors import ValidationError

SCHEMA_VERSION = 2
FLUSH_EVERY = 0.5  # seconds between flushes of ordinary events


def default_path(experiment: str, root: Path = Path(".connreset/runs")) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    return root / f"{stamp}-{experiment}-{os.getpid()}.json"


def _jsonable(value: object) -> object:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return repr(value)


def to_line(event: ev.Event) -> dict[str, Any] | None:
    """The journal line for an event (None: not journaled, e.g. pod log lines)."""
    match event:
        case ev.RunStarted():
            return {
                "type": "run_started",
                "experiment": event.experiment,
                "params": _jsonable(redact_deep(dict(event.params))),
                "testbed": event.testbed,
                "run_id": event.run_id,
                "spec": _jsonable(redact_deep(dict(event.spec))),
                "at": event.at,
                "t": event.t,
                "environment": dict(event.environment),
                "phases": list(event.phases),
                "expects": dict(event.expects),
                "description": event.description,
            }
        case ev.PhaseStarted():
            return {"type": "phase_started", "phase": event.phase, "t": event.t}
        case ev.PhaseFinished():
            return {"type": "phase_finished", "phase": event.phase, "status": event.status, "t": event.t}
        case ev.StepFinished():
            return {
                "type": "step_finished",
                "name": event.step,
                "kind": event.kind,
                "phase": event.phase,
                "status": event.status,
                "started_at": event.at,
                "duration_s": round(event.duration_s, 6),
                "detail": event.detail,
                "t": event.t,
            }
        case ev.Sample():
            return {
                "type": "sample",
                "t": event.t,
                "node": event.node,
                "metric": event.metric,
                "value": event.value,
            }
        case ev.FindingRecorded():
            return {
                "type": "finding",
                "phase": event.phase,
                "key": event.key,
                "value": _jsonable(event.value),
            }
        case ev.NodeInfo():
            return {
                "type": "node",
                "node": event.node,
                "kernel": event.kernel,
                "sysctl_before": dict(event.sysctl_before),
                "sysctl_after": dict(event.sysctl_after),
            }
        case ev.UndoRecorded():
            return {"type": "undo_recorded", "undo": event.record.to_json()}
        case ev.UndoFinished():
            return {
                "type": "undo_finished",
                "id": event.record.id,
                "status": event.status,
                "verified": event.verified,
                "detail": event.detail,
            }
        case ev.WatchdogChanged():
            return {
                "type": "watchdog",
                "place": event.place,
                "state": event.state,
                "detail": event.detail,
                "pid": event.pid,
                "lease": event.lease,
            }
        case ev.RunFinished():
            return {
                "type": "run_finished",
                "outcome": event.outcome,
                "at": event.at,
                "cancelled": event.cancelled,
                "pending": list(event.pending),
                "claims": [dict(c) for c in event.claims],
                "conclusions": dict(event.conclusions),
            }
        case _:
            return None


class Summary:
    """The summary document, folded from journal lines (live, or when reading a cut-off file)."""

    def __init__(self) -> None:
        self.doc: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "experiment": None,
            "run_id": None,
            "params": {},
            "testbed": None,
            "spec": {},
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
            "pending": [],
            "watchdogs": {},
            "claims": [],
            "description": "",
        }
        self._t0 = 0.0
        self._undo: dict[int, dict[str, Any]] = {}

    def apply(self, line: dict[str, Any]) -> None:
        d = self.doc
        kind = line.get("type")
        if kind == "run_started":
            self._t0 = float(line.get("t", 0.0))
            d.update(
                experiment=line["experiment"],
                run_id=line.get("run_id"),
                params=line["params"],
                testbed=line["testbed"],
                spec=line.get("spec", {}),
                started_at=line["at"],
                environment=line["environment"],
            )
            expects = line.get("expects", {})
            d["phases"] = [
                {"name": p, "status": "pending", **({"expect": expects[p]} if p in expects else {})}
                for p in line["phases"]
            ]
            d["description"] = line.get("description", "")
        elif kind == "phase_started":
            for p in d["phases"]:
                if p["name"] == line["phase"]:
                    p["started_t"] = self._since(line)
        elif kind == "phase_finished":
            for p in d["phases"]:
                if p["name"] == line["phase"]:
                    p["status"] = line["status"]
                    p["finished_t"] = self._since(line)
        elif kind == "step_finished":
            step = {k: v for k, v in line.items() if k != "type"}
            step["t"] = self._since(line)
            d["steps"].append(step)
        elif kind == "sample":
            t = self._since(line)
            d["samples"].append(
                {"t": t, "node": line["node"], "metric": line["metric"], "value": line["value"]}
            )
        elif kind == "finding":
            d["findings"].setdefault(line["phase"], {})[line["key"]] = line["value"]
        elif kind == "node":
            node = d["nodes"].setdefault(
                line["node"], {"kernel": None, "sysctl_before": {}, "sysctl_after": {}}
            )
            if line.get("kernel"):
                node["kernel"] = line["kernel"]
            node["sysctl_before"].update(line.get("sysctl_before", {}))
            node["sysctl_after"].update(line.get("sysctl_after", {}))
        elif kind == "undo_recorded":
            entry = {**line["undo"], "status": "pending", "verified": None, "detail": ""}
            self._undo[int(entry["id"])] = entry
            d["undo"].append(entry)
        elif kind == "undo_finished":
            done = self._undo.get(int(line["id"]))
            if done is not None:
                done.update(status=line["status"], verified=line["verified"], detail=line["detail"])
        elif kind == "watchdog":
            place = d["watchdogs"].setdefault(line["place"], {})
            place.update(
                {k: v for k, v in line.items() if k not in ("type", "place") and v not in (None, "")}
            )
        elif kind == "run_finished":
            d.update(
                outcome=line["outcome"],
                finished_at=line["at"],
                cancelled=line["cancelled"],
                pending=line.get("pending", []),
                claims=line.get("claims", []),
            )
            for p in d["phases"]:
                if p["name"] in line.get("conclusions", {}):
                    p["conclusion"] = line["conclusions"][p["name"]]

    def _since(self, line: dict[str, Any]) -> float | None:
        """A line's ``t`` as seconds since the run started (None for lines written without one)."""
        t = line.get("t")
        return None if t is None else round(float(t) - self._t0, 4)


def _private_dir(path: Path) -> None:
    private_dir(path)


def check_path(path: str | os.PathLike[str], given: bool = True, *, overwrite: bool = False) -> None:
    """Make sure :class:`JournalWriter` can create the journal, by trying: its directories are
    made (0700, as the writer would) and the file is opened for writing (never following a
    symlink, never truncating); a file that did not exist is removed again. A file that exists
    is refused unless it is the journal of a connreset run that ended (or ``overwrite``).

    Raises:
        ValidationError: naming the path (``--journal``'s when ``given``, else the default's) and
            why it cannot be written.
    """
    path = Path(path)
    where = f"--journal {path}" if given else f"journal {path}"
    existed = path.exists() or path.is_symlink()
    if existed and not overwrite:
        _replaceable(path, where)
    try:
        _private_dir(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        os.close(fd)
        if not existed:
            path.unlink()
    except OSError as exc:
        hint = "" if given else " (choose another with --journal)"
        raise ValidationError(f"{where}: cannot write it: {exc.strerror or exc}{hint}") from None


def _replaceable(path: Path, where: str) -> None:
    """A file that exists may be replaced only if it is the journal of a run that ended."""
    if path.is_symlink():
        raise ValidationError(f"{where}: cannot write it: it is a symbolic link")
    if not path.is_file():
        raise ValidationError(f"{where}: cannot write it: it exists and is not a file")
    try:
        doc = read(path)
    except ValidationError:
        raise ValidationError(
            f"{where}: exists and is not the journal of an ended connreset run; choose another "
            "path, or --overwrite"
        ) from None
    if doc.get("outcome") is None:
        raise ValidationError(
            f"{where}: is the journal of a run that did not end; put it back first "
            f"(connreset restore {path}), or choose another path"
        )


class JournalWriter:
    """Appends journal lines as the run goes; :meth:`close` writes the summary document.

    Raises:
        ValidationError: the journal cannot be created (checked before anything runs).
    """

    def __init__(self, path: str | os.PathLike[str], *, flush_every: float = FLUSH_EVERY) -> None:
        self.path = Path(path)
        self.summary = Summary()
        self._flush_every = flush_every
        self._last_flush = time.monotonic()
        try:
            _private_dir(self.path.parent)
            fd = os.open(
                self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
            )
        except OSError as exc:
            raise ValidationError(f"--journal {self.path}: cannot write it: {exc.strerror or exc}") from None
        self._file: IO[str] | None = os.fdopen(fd, "w", encoding="utf-8")

    def write(self, event: ev.Event, *, durable: bool = False) -> None:
        """Append the event's line; with ``durable``, fsync before returning. Raises OSError."""
        line = to_line(event)
        if line is None:
            return
        self.summary.apply(line)
        if self._file is None:
            raise OSError("the journal is closed")
        self._file.write(json.dumps(line, separators=(",", ":")) + "\n")
        now = time.monotonic()
        if durable:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._last_flush = now
        elif now - self._last_flush >= self._flush_every:
            self._file.flush()
            self._last_flush = now

    def close(self) -> None:
        """Write the summary document over the lines (atomically). Raises OSError on failure;
        the lines are then still on disk, and :func:`read` reads them."""
        if self._file is not None:
            try:
                self._file.flush()
                os.fsync(self._file.fileno())
            finally:
                self._file.close()
                self._file = None
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.summary.doc, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


_OPTIONAL_STR = (str, type(None))
#: The summary document's fields and their types, as readers (restore, report) rely on them.
_FIELDS: dict[str, type | tuple[type, ...]] = {
    "schema": int,
    "experiment": str,
    "run_id": _OPTIONAL_STR,
    "params": dict,
    "testbed": _OPTIONAL_STR,
    "spec": dict,
    "outcome": _OPTIONAL_STR,
    "cancelled": bool,
    "started_at": _OPTIONAL_STR,
    "finished_at": _OPTIONAL_STR,
    "environment": dict,
    "phases": list,
    "steps": list,
    "nodes": dict,
    "samples": list,
    "findings": dict,
    "undo": list,
    "pending": list,
    "claims": list,
    "description": str,
}
#: What each entry of a list field holds: a dict with these keys, of these types.
_ENTRIES: dict[str, dict[str, type | tuple[type, ...]]] = {
    "phases": {"name": str, "status": str},
    "steps": {"name": str, "status": str},
    "samples": {"node": str, "metric": str, "value": (int, float)},
    "undo": {"id": int, "action": str, "node": str, "target": str},
    "claims": {"claim": str, "phase": str, "verdict": str, "evidence": str},
}


def _is(value: object, kind: type | tuple[type, ...]) -> bool:
    """isinstance, with a bool never standing for an int."""
    return isinstance(value, kind) and (not isinstance(value, bool) or kind is bool)


def _entry(key: str, entry: object) -> bool:
    if key == "pending":
        return isinstance(entry, str)
    return isinstance(entry, dict) and all(_is(entry.get(f), t) for f, t in _ENTRIES[key].items())


def _check(doc: dict[str, Any], path: object) -> dict[str, Any]:
    """A run journal's summary document, checked field by field (missing fields: their defaults).

    A sweep's ``results.json`` (``vary`` and ``boundaries``) is passed on as it is.

    Raises:
        ValidationError: naming the first field that is not what a journal holds.
    """
    if "vary" in doc and "boundaries" in doc:
        return doc
    if not isinstance(doc.get("experiment"), str):
        raise ValidationError(f"{path}: not a connreset journal (no experiment)")
    full = {**Summary().doc, **doc}
    for key, kind in _FIELDS.items():
        if not _is(full[key], kind):
            raise ValidationError(f"{path}: not a connreset journal ({key} is {type(full[key]).__name__})")
    for key in (*_ENTRIES, "pending"):
        for n, entry in enumerate(full[key]):
            if not _entry(key, entry):
                raise ValidationError(f"{path}: not a connreset journal ({key}[{n}] is malformed)")
    return full


def read(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a journal: a summary document, or the lines of a run that did not finish.

    Raises:
        ValidationError: no such file, or not a journal (not text, not JSON, not a journal's
            shape), in one line naming the file (and the line).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot read journal {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValidationError(f"{path}: not a connreset journal (not UTF-8 text)") from None
    try:
        whole = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        whole = None
    if isinstance(whole, dict) and "schema" in whole:
        return _check(whole, path)
    summary = Summary()
    lines = text.splitlines()
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except (json.JSONDecodeError, RecursionError):
            if n == len(lines):  # the last line, cut short by a kill: everything before it counts
                break
            raise ValidationError(f"{path}:{n}: not a connreset journal line") from None
        if not isinstance(line, dict) or "type" not in line:
            raise ValidationError(f"{path}:{n}: not a connreset journal line")
        try:
            summary.apply(line)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValidationError(
                f"{path}:{n}: not a connreset journal line ({type(exc).__name__}: {exc})"
            ) from None
    if summary.doc["experiment"] is None:
        raise ValidationError(f"{path}: not a connreset journal (no run_started line)")
    return _check(summary.doc, path)


def pending_undo(journal: dict[str, Any]) -> list[dict[str, Any]]:
    """Undo entries that never completed, newest first (the order to revert them in)."""
    return [
        u for u in reversed(journal.get("undo", [])) if u.get("status") != "done" or not u.get("verified")
    ]
