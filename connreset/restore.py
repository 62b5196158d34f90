"""``connreset restore``: put back what an interrupted run changed.

With no journal, it restores the lab's host state (global sysctls, namespaces, processes) from the
lab's state file. With a journal, it replays the undo records that never completed, newest first,
on the backend the journal names (only for backends whose nodes outlive the run; the lab's do not).
"""

from __future__ import annotations

from pathlib import Path

from connreset import journal as journal_mod
from connreset.backends.registry import load
from connreset.engine.undo import UndoRecord, revert
from connreset.errors import ValidationError


async def restore(
    path: Path | None, backend_name: str | None = None, options: dict[str, str] | None = None
) -> list[str]:
    """Replay a journal's pending undos on its backend (or ``backend_name``, built with ``options``)."""
    if path is None or (backend_name in (None, "lab") and _lab_journal(path)):
        from connreset.lab import control

        return [control.down()]
    data = journal_mod.read(path)
    pending = journal_mod.pending_undo(data)
    if not pending:
        return [f"{path}: nothing to restore"]
    backend = load(backend_name or data["backend"])(**(options or {}))
    lines = []
    async with backend:
        for entry in pending:
            record = UndoRecord.from_json(entry)
            verified, detail = await revert(record, backend)
            lines.append(f"{'✓' if verified else '✗'} {record.node}: {record.describe()} ({detail})")
    return lines


def _lab_journal(path: Path) -> bool:
    if not path.is_file():
        raise ValidationError(f"no such journal: {path}")
    return journal_mod.read(path).get("backend") == "lab"
