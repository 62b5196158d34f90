"""``connreset restore``: put back what an interrupted run changed.

With a journal, it reopens exactly the testbed the journal names (cluster backend, node access
and their options; secrets, redacted in the journal, must be given again), and puts back what
never completed, newest first, each read back, and lets each backend remove what it made for
that run. With no journal, it removes what any lab left (``connreset lab down``).

A journal is data, never code, and a restore is safe to kill:

- only installed backends (entry points) are reopened: a journal's ``module:factory`` is refused
  unless the same one is given again on the command line;
- every undo record is checked before anything is built or opened (known keys, the kernel's
  ranges and connreset's own, the testbed's node names, only the rules connreset makes);
- for a key changed several times only the original value is put back (the others are claimed
  from the watchdog, so nobody applies them later), and each undo is claimed before it is applied:
  one a node's watchdog applied already is only read back;
- the run's watchdog stays armed, its lease renewed by ``restore``, until everything is put back
  and verified: ``restore`` killed at any moment leaves the rest to the watchdog;
- after a watchdog has put everything back, ``restore`` opens nothing and changes nothing.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from connreset._support.redact import REDACTED
from connreset.engine.options import UNDO_TIMEOUT
from connreset.engine.runner import revert_once
from connreset.engine.undo import UndoRecord, revert, verify
from connreset.engine.watchdog import Keeper
from connreset.errors import ValidationError
from connreset.guest.timing import guest_note
from connreset.kernel import sysctl
from connreset.kernel.node import Rule
from connreset.runs import journal as journal_mod
from connreset.testbed import Testbed, TestbedSpec, registry

_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
REPLICAS_MAX = 10_000


def _known_rules() -> tuple[Rule, ...]:
    """The rules connreset adds, and so the only ones a journal may ask to delete."""
    from connreset.steps.node import DROP_INVALID

    return (DROP_INVALID,)


def spec_of(
    journal: Mapping[str, object],
    cluster: str | None = None,
    node_access: str | None = None,
    cluster_options: Mapping[str, str] | None = None,
    node_options: Mapping[str, str] | None = None,
) -> TestbedSpec:
    """The journal's testbed; what is given again (on the command line) takes precedence.

    Raises:
        ValidationError: not a testbed spec; a ``module:factory`` only the journal names (a
            journal never chooses code to run); a secret the journal does not keep.
    """
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
    chosen = ((cluster, spec.cluster, "--cluster"), (node_access, spec.node_access, "--node-access"))
    for given, name, option in chosen:
        if name is not None and ":" in name and given != name:
            raise ValidationError(
                f"the journal names {name!r}, which is code, not an installed backend; restore reopens "
                f"only installed ones: if you trust it, give it again ({option} {name})"
            )
    hidden = [k for k, v in {**spec.cluster_options, **spec.node_options}.items() if v == REDACTED]
    if hidden:
        raise ValidationError(
            f"the journal does not keep secrets; give {', '.join(hidden)} again "
            "(--cluster-opt K=V / --node-opt K=V)"
        )
    return spec


def check_records(records: Sequence[UndoRecord], nodes: Sequence[str] | None, run_id: object) -> None:
    """Every undo record must be one the run itself could have written, before anything opens
    (``nodes`` None: a backend that knows its nodes only once open, checked again then).

    Raises:
        ValidationError: naming the record and what is wrong with it, in one line.
    """
    rules = _known_rules()
    for record in records:
        where = f"undo #{record.id} ({record.node}: {record.describe()})"
        try:
            if run_id and record.run_id not in (None, run_id):
                raise ValidationError(f"it belongs to run {record.run_id!r}, not this journal's {run_id!r}")
            if record.action in ("sysctl", "rule"):
                if nodes is not None and record.node not in nodes:
                    raise ValidationError(
                        f"unknown node {record.node!r} (the testbed has {', '.join(nodes) or 'none'})"
                    )
                if record.action == "sysctl":
                    name, _ = sysctl.check_restore(record.target, record.value)
                    if name != record.target and sysctl.full_name(record.target) != name:
                        raise ValidationError(f"unknown sysctl key {record.target!r}")
                elif record.rule not in rules:
                    raise ValidationError("connreset makes no such rule")
            else:
                if record.node != "cluster":
                    raise ValidationError(f"a {record.action} undo is the cluster's, not {record.node!r}'s")
                if not _NAME.fullmatch(record.target):
                    raise ValidationError(f"{record.target!r} is not a deployment name")
                if record.action == "scale" and not (
                    record.value is not None and record.value.isdigit() and int(record.value) <= REPLICAS_MAX
                ):
                    raise ValidationError(f"replicas must be 0 to {REPLICAS_MAX}, got {record.value!r}")
        except ValidationError as exc:
            raise ValidationError(f"{where}: {exc}") from None


def _key(record: UndoRecord) -> tuple[str, str] | None:
    """What a node-side record puts back: the same key (one place for machine-wide ones) or rule."""
    if record.action == "sysctl":
        name = sysctl.full_name(record.target)
        return ("(machine)" if sysctl.is_host_global(name) else record.node, name)
    if record.action == "rule":
        return (record.node, record.target)
    return None


def originals(records: Sequence[UndoRecord]) -> tuple[list[UndoRecord], dict[int, UndoRecord]]:
    """Split newest-first records into those to apply (for each key the oldest: its original value)
    and those superseded by it (id → the original that replaces it)."""
    oldest: dict[tuple[str, str], UndoRecord] = {}
    for record in records:
        key = _key(record)
        if key is not None and (key not in oldest or record.id < oldest[key].id):
            oldest[key] = record
    apply, superseded = [], {}
    for record in records:
        key = _key(record)
        if key is None or oldest[key] is record:
            apply.append(record)
        else:
            superseded[record.id] = oldest[key]
    return apply, superseded


async def _all_done_by_watchdog(keeper: Keeper, records: Sequence[UndoRecord]) -> list[str] | None:
    """If a watchdog has put back and verified every record already (and its final actions took
    what it does not hold, as the lab's ``lab down``), the lines that say so; else None."""
    if not keeper.links:
        return None
    lines = []
    for record in records:
        if record.action not in ("sysctl", "rule"):
            if not keeper.finishes_cluster(record):
                return None
            lines.append(f"✓ {record.node}: {record.describe()} (removed by the watchdog's teardown)")
            continue
        said = await keeper.settled(record)
        if said is None:
            return None
        ok, detail = said
        if not ok:
            return None
        lines.append(f"✓ {record.node}: {record.describe()} ({detail})")
    return lines


async def restore(
    path: Path | None,
    cluster: str | None = None,
    node_access: str | None = None,
    cluster_options: Mapping[str, str] | None = None,
    node_options: Mapping[str, str] | None = None,
    *,
    undo_timeout: float = UNDO_TIMEOUT,
) -> tuple[list[str], bool]:
    """Put back a journal's pending undos on its testbed; return (lines for people, all put back).

    Raises:
        ValidationError: a corrupt or forged journal, or a testbed it cannot name; nothing was
            built or opened.
    """
    if path is None:
        from connreset.lab import control

        return [control.down()], True
    data = journal_mod.read(path)
    in_guest = guest_note(data.get("environment"))
    if in_guest:  # its changes lived and died in the guest's own kernel
        return [f"{path}: {in_guest}"], True
    pending = journal_mod.pending_undo(data)
    try:  # every record is checked before the testbed is built, let alone opened
        records = [UndoRecord.from_json(entry) for entry in pending]
    except ValidationError as exc:
        raise ValidationError(f"{path}: {exc}") from None
    run_id = data.get("run_id")
    if not pending and not run_id:
        return [f"{path}: nothing to restore"], True
    try:
        spec = spec_of(data, cluster, node_access, cluster_options, node_options)
        testbed = registry.build(spec)
        known = testbed.node_names()
        check_records(records, list(known) if known else None, run_id)
    except ValidationError as exc:
        raise ValidationError(f"{path}: {exc}") from None
    keeper = await Keeper.attach(testbed, str(run_id)) if run_id else None
    if keeper is not None:
        await keeper.wait_firing()  # a watchdog putting things back now finishes first
    if keeper is not None and records:
        done = await _all_done_by_watchdog(keeper, records)
        if done is not None:  # nothing to open, nothing to change: say who did it
            return [*done, *await keeper.close(disarm=True)], True
    lines, ok = await _replay(path, testbed, records, keeper, str(run_id) if run_id else None, undo_timeout)
    if not pending:
        lines.insert(0, f"{path}: no undo was pending")
    return lines, ok


async def _put_back(
    record: UndoRecord, testbed: Testbed, keeper: Keeper | None, wait: float
) -> tuple[bool, str]:
    """One original value back. While ``restore`` renews the record's watchdog, it applies first
    and then claims (retires) the record: killed in between, the watchdog applies the same value
    again, which changes nothing. Otherwise claim first: one the watchdog took is only read back."""
    if keeper is None or not keeper.renewed(record):
        return await revert_once(record, testbed, keeper, wait)
    verified, detail = await revert(record, testbed)
    if await keeper.claim(record) == "watchdog":
        ok, said = await keeper.watchdog_result(record, wait)
        verified, detail = await verify(record, testbed)
        return ok and verified, f"{said}; {detail}"
    return verified, detail


async def _replay(
    path: Path,
    testbed: Testbed,
    records: Sequence[UndoRecord],
    keeper: Keeper | None,
    run_id: str | None,
    undo_timeout: float,
) -> tuple[list[str], bool]:
    lines: list[str] = []
    ok = True
    if keeper is not None:
        await keeper.renew_for_restore()  # armed and renewed until all is back; killed, it takes over
    try:
        async with testbed:
            try:  # nodes a backend knows only once open: checked before anything changes
                check_records(records, list(testbed.node_names() or ()), run_id)
            except ValidationError as exc:
                raise ValidationError(f"{path}: {exc}") from None
            if run_id:
                for part in (testbed.cluster, testbed.access):  # act on that run's objects again
                    await part.resume_run(run_id)
            todo, superseded = originals(records)
            for record in records:  # first, so that nobody applies a value between two changes
                if record.id in superseded:
                    if keeper is not None:
                        await keeper.claim(record)
                    first = superseded[record.id]
                    lines.append(
                        f"· {record.node}: {record.describe()} (not applied: #{first.id} puts back the "
                        f"original, {first.describe()})"
                    )
            for record in todo:
                try:
                    async with asyncio.timeout(undo_timeout):
                        verified, detail = await _put_back(record, testbed, keeper, undo_timeout)
                except Exception as exc:
                    verified, detail = False, f"{type(exc).__name__}: {exc}"
                ok &= verified
                lines.append(f"{'✓' if verified else '✗'} {record.node}: {record.describe()} ({detail})")
            assert len(todo) + len(superseded) == len(records)
            if keeper is not None:
                # disarmed only once everything is back and verified; else it tries at its lease's end
                lines += await keeper.close(disarm=ok)
                keeper = None
            if run_id:
                for part in (testbed.access, testbed.cluster):
                    lines += list(await part.end_run(run_id))
    finally:
        if keeper is not None:  # interrupted or failed: the watchdog finishes what is left
            keeper.stop_renewing()
    return lines, ok
