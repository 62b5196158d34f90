"""``connreset restore``: put back what an interrupted run changed.

With a journal, it reopens exactly the testbed the journal names (cluster backend, node access
and their options; secrets, redacted in the journal, must be given again), replays the undo
records that never completed, newest first, each read back (one a node's watchdog applied already
is only read back), and lets each backend remove what
it made for that run. With no journal, it removes what any lab left (``connreset lab down``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

from connreset import journal as journal_mod
from connreset.engine.runner import UNDO_TIMEOUT, revert_once
from connreset.engine.undo import UndoRecord
from connreset.engine.watchdog import Keeper
from connreset.errors import ValidationError
from connreset.guest.timing import guest_note
from connreset.redact import REDACTED
from connreset.testbed import TestbedSpec, registry


def spec_of(
    journal: Mapping[str, object],
    cluster: str | None = None,
    node_access: str | None = None,
    cluster_options: Mapping[str, str] | None = None,
    node_options: Mapping[str, str] | None = None,
) -> TestbedSpec:
    """The journal's testbed; what is given again (on the command line) takes precedence."""
    raw = journal.get("spec")
    try:
        spec = TestbedSpec.from_json(raw if isinstance(raw, dict) else {"cluster": journal.get("testbed")})
        spec = TestbedSpec(
            cluster or spec.cluster,
            node_access or spec.node_access,
            {**spec.cluster_options, **(cluster_options or {})},
            {**spec.node_options, **(node_options or {})},
        )
    except (TypeError, ValueError, AttributeError) as exc:
        raise ValidationError(f"the journal's testbed is not a testbed spec: {exc}") from None
    hidden = [k for k, v in {**spec.cluster_options, **spec.node_options}.items() if v == REDACTED]
    if hidden:
        raise ValidationError(
            f"the journal does not keep secrets; give {', '.join(hidden)} again "
            "(--cluster-opt K=V / --node-opt K=V)"
        )
    return spec


async def restore(
    path: Path | None,
    cluster: str | None = None,
    node_access: str | None = None,
    cluster_options: Mapping[str, str] | None = None,
    node_options: Mapping[str, str] | None = None,
    *,
    undo_timeout: float = UNDO_TIMEOUT,
) -> tuple[list[str], bool]:
    """Replay a journal's pending undos on its testbed; return (lines for people, all put back)."""
    if path is None:
        from connreset.lab import control

        return [control.down()], True
    data = journal_mod.read(path)
    in_guest = guest_note(data.get("environment"))
    if in_guest:  # its changes lived and died in the guest's own kernel
        return [f"{path}: {in_guest}"], True
    pending = journal_mod.pending_undo(data)
    try:  # every record is checked before the testbed is opened
        records = [UndoRecord.from_json(entry) for entry in pending]
    except ValidationError as exc:
        raise ValidationError(f"{path}: {exc}") from None
    run_id = data.get("run_id")
    if not pending and not run_id:
        return [f"{path}: nothing to restore"], True
    testbed = registry.build(spec_of(data, cluster, node_access, cluster_options, node_options))
    lines: list[str] = []
    ok = True
    async with testbed:
        if run_id:
            for part in (testbed.cluster, testbed.access):
                resume = getattr(part, "resume_run", None)  # optional: act on that run's objects again
                if resume is not None:
                    await resume(str(run_id))
        keeper = await Keeper.attach(testbed, str(run_id)) if run_id else None
        for record in records:
            try:
                async with asyncio.timeout(undo_timeout):
                    verified, detail = await revert_once(record, testbed, keeper, undo_timeout)
            except Exception as exc:
                verified, detail = False, f"{type(exc).__name__}: {exc}"
            ok &= verified
            lines.append(f"{'✓' if verified else '✗'} {record.node}: {record.describe()} ({detail})")
        if keeper is not None:
            lines += await keeper.close(disarm=True)
        if run_id:
            for part in (testbed.access, testbed.cluster):
                lines += list(await part.end_run(str(run_id)))
    if not pending:
        lines.insert(0, f"{path}: no undo was pending")
    return lines, ok
