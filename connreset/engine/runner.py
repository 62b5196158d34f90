"""The asyncio engine: runs a plan's phases on an open testbed, undoes everything, publishes events.

:func:`run_on` is the whole engine. It needs an *open* testbed, so many runs can share one (a
sweep's trials on one lab). Every change is preceded by its undo record, written durably to the
journal first: if that write fails, the change is not made and the run ends in error.
"""

from __future__ import annotations

import asyncio
import platform
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

import attrs

from connreset import events as ev
from connreset._support.aio import Abandoned, shielded
from connreset._support.redact import redact
from connreset._version import __version__
from connreset.engine.logindex import LogIndex
from connreset.engine.options import RunOptions
from connreset.engine.results import (
    Outcome,
    PhaseVerdict,
    RunResult,
    StepResult,
    StepStatus,
    UndoResult,
    phase_status,
)
from connreset.engine.undo import UndoRecord, revert, verify
from connreset.engine.watchdog import Keeper
from connreset.errors import BackendError, ConnresetError, ExpectationFailed, JournalError, ValidationError
from connreset.experiment import PlannedPhase, claims
from connreset.experiment.checks import check_plan
from connreset.experiment.plan import Plan
from connreset.guest.timing import environment as guest_environment
from connreset.guest.timing import scaled
from connreset.kernel.node import NodeKernel, Rule
from connreset.steps.base import FlatStep
from connreset.testbed import RUN_LABEL, ClusterBackend, DeploymentSpec, PodStatus, Testbed


class Journal(Protocol):
    """Where the engine writes events; ``durable=True`` must be on disk (fsync) when it returns."""

    def write(self, event: ev.Event, *, durable: bool = False) -> None: ...


def environment() -> dict[str, str]:
    return {
        "connreset": __version__,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "machine": platform.machine(),
        **guest_environment(),  # in a guest: its kernel, package, KVM or TCG, slowness
    }


def _fingerprint(testbed: Testbed) -> dict[str, Any]:
    """What the cluster backend says of the environment, if it says (the kubernetes backend: its
    version, kube-proxy's mode and conntrack settings, each node's kernel)."""
    try:
        found = testbed.cluster.fingerprint()
    except Exception as exc:  # a description must not stop a run
        return {"cluster": f"unknown ({type(exc).__name__}: {exc})"}
    return {"cluster": dict(found)} if found else {}


def new_run_id() -> str:
    """Short, unique and usable as a Kubernetes label value: ``20261126t101500-1a2b3c``."""
    return time.strftime("%Y%m%dt%H%M%S") + "-" + secrets.token_hex(3)


class _Context:
    """The StepContext the engine gives one running step."""

    def __init__(self, engine: Engine, phase: str, step: str) -> None:
        self._engine = engine
        self.testbed = engine.testbed
        self.phase = phase
        self.step = step
        self.state = engine.state
        self.logs = engine.logs
        self.run_id = engine.run_id

    @property
    def cluster(self) -> ClusterBackend:
        return self.testbed.cluster

    def nodes(self, names: Sequence[str] | None = None) -> Sequence[NodeKernel]:
        return self.testbed.nodes(names)

    async def set_sysctl(self, node: NodeKernel, key: str, value: str) -> str:
        old = await node.read_sysctl(key)
        self._engine.remember_before(node.name, key, old)
        await self._engine.record_undo("sysctl", node.name, key, value=old)
        await node.write_sysctl(key, value)
        return old

    async def add_rule(self, node: NodeKernel, rule: Rule) -> bool:
        if await node.has_rule(rule):  # kube-proxy's, or an earlier step's: it stays, untouched
            return False
        await self._engine.record_undo("rule", node.name, rule.spec(), rule=rule)
        await node.add_rule(rule)
        return True

    async def deploy(self, spec: DeploymentSpec) -> None:
        existing = await self.cluster.get(spec.name)
        if existing is not None and existing.run_id != self.run_id:
            raise BackendError(_not_ours(spec.name, existing.run_id))
        spec = attrs.evolve(spec, labels={**spec.labels, RUN_LABEL: self.run_id})
        self._engine.created.add(spec.name)
        await self._engine.record_undo("delete-deployment", "cluster", spec.name)
        self.logs.forget(spec.name)
        await self.cluster.deploy(spec)
        await self.pods(spec.name)

    async def scale(self, deployment: str, replicas: int) -> None:
        if deployment not in self._engine.created:
            current = await self.cluster.get(deployment)
            if current is None:
                raise BackendError(f"no deployment {deployment!r} to scale")
            await self._engine.record_undo("scale", "cluster", deployment, value=str(current.replicas))
        await self.cluster.scale(deployment, replicas)
        await self.pods(deployment)

    async def delete(self, deployment: str) -> None:
        self._engine.check_writable(f"delete deployment {deployment}")
        existing = await self.cluster.get(deployment)
        if existing is not None and existing.run_id != self.run_id:
            raise BackendError(_not_ours(deployment, existing.run_id))
        await self.cluster.delete(deployment)
        self._engine.publish_pods(deployment, [])

    async def pods(self, deployment: str) -> list[PodStatus]:
        pods = await self.cluster.pods(deployment)
        self._engine.publish_pods(deployment, pods)
        return pods

    def progress(self, done: float, total: float, unit: str = "", detail: str = "") -> None:
        self._engine.emit(ev.Progress(self.step, self.phase, done, total, unit, detail))

    def sample(self, node: str, metric: str, value: float) -> None:
        self._engine.emit(ev.Sample(time.monotonic(), node, metric, value))

    def finding(self, key: str, value: object) -> None:
        self._engine.findings.setdefault(self.phase, {})[key] = value
        self._engine.emit(ev.FindingRecorded(self.phase, key, value))

    def note(self, message: str) -> None:
        self._engine.emit(ev.StepNote(self.step, self.phase, message))


def _not_ours(name: str, owner: str | None) -> str:
    made_by = f"by run {owner}" if owner else "outside connreset"
    return (
        f"deployment {name!r} already exists, created {made_by}; connreset will not touch it "
        "(delete it yourself, or name yours differently)"
    )


class Engine:
    """One run of one plan on one open testbed."""

    def __init__(
        self,
        plan: Plan,
        testbed: Testbed,
        bus: ev.EventBus,
        *,
        run_id: str,
        options: RunOptions,
        journal: Journal | None = None,
    ) -> None:
        self.plan = plan
        self.testbed = testbed
        self.bus = bus
        self.run_id = run_id
        self.options = options
        self.journal = journal
        self.fail_fast = options.fail_fast
        self.step_timeout = options.step_timeout
        self.undo_timeout = options.undo_timeout
        self.abandon = options.abandon
        self.watchdog_lease = options.watchdog_lease
        self.keeper: Keeper | None = None
        self.results: list[StepResult] = []
        self.findings: dict[str, dict[str, object]] = {}
        self.undo_stack: list[UndoRecord] = []
        self.undo_results: list[UndoResult] = []
        self.pending: list[UndoRecord] = []
        self.created: set[str] = set()
        self.state: dict[str, object] = {}
        self.before: dict[str, dict[str, str]] = {}
        self.logs = LogIndex()
        self.journal_error: str | None = None
        self._next_undo = 1
        self._failed = False
        self._pods_seen: dict[str, tuple[ev.PodState, ...]] = {}
        self._task = asyncio.current_task()
        self._calm = self._task.cancelling() if self._task is not None else 0

    def _signalled(self) -> bool:
        """The run's task has been asked to stop (a signal), though it may not know it yet."""
        return self._task is not None and self._task.cancelling() > self._calm

    # -- events and the journal -----------------------------------------------------------------
    def emit(self, event: ev.Event, *, durable: bool = False) -> None:
        """Journal the event, then publish it. A durable write that fails raises JournalError."""
        if self.journal is not None and self.journal_error is None:
            try:
                self.journal.write(event, durable=durable)
            except Exception as exc:
                self.journal_error = f"{type(exc).__name__}: {exc}"
                self.findings.setdefault("_run", {})["error"] = f"journal: {self.journal_error}"
                if durable:
                    raise JournalError(
                        f"the journal could not be written ({self.journal_error}); the change was not made"
                    ) from exc
        elif durable and self.journal_error is not None:
            raise JournalError(f"the journal is broken ({self.journal_error}); the change was not made")
        self.bus.emit(event)

    def publish_pods(self, deployment: str, pods: Sequence[PodStatus]) -> None:
        """Publish a deployment's pods when they differ from what was last published."""
        states = tuple(ev.PodState(p.name, p.phase, p.restarts, p.node) for p in pods)
        if self._pods_seen.get(deployment) != states:
            self._pods_seen[deployment] = states
            self.emit(ev.PodStates(time.monotonic(), deployment, states))

    def remember_before(self, node: str, key: str, value: str) -> None:
        self.before.setdefault(node, {}).setdefault(key, value)

    async def record_undo(
        self, action: Any, node: str, target: str, *, value: str | None = None, rule: Rule | None = None
    ) -> None:
        """Write the undo to disk, then hand it to its node's watchdog; only then may the caller
        make the change."""
        if self._signalled():  # the run is stopping: its steps make no change any more
            raise asyncio.CancelledError
        self.check_writable(f"{action} {target} on {node}")
        record = UndoRecord(self._next_undo, action, node, target, value, rule, self.run_id)
        self.emit(ev.UndoRecorded(record), durable=True)
        self._next_undo += 1
        self.undo_stack.append(record)
        if self.keeper is not None:
            await self.keeper.hold(record)

    def check_writable(self, what: str) -> None:
        """A read-only plan (no mutating step) changes nothing: every change is refused."""
        if self.plan.read_only:
            raise BackendError(f"the plan is read-only; refused: {what}")

    # -- running --------------------------------------------------------------------------------
    async def run(self) -> tuple[Outcome, bool]:
        """Run every phase, then every undo; return (outcome, cancelled)."""
        cancelled = False
        statuses: list[str] = []
        phases = self.plan.phases
        cluster = self.testbed.cluster
        cluster.stream_logs(self._log_line)
        try:
            await cluster.begin_run(self.run_id)
            await self.testbed.access.begin_run(self.run_id)
            await self._arm_watchdogs()
            await self._node_info(before=True)
            for phase in phases:
                await asyncio.sleep(0)  # a signal that came meanwhile stops the run here, between phases
                if self._failed and self.fail_fast:
                    self._skip(phase)
                    statuses.append("skipped")
                    continue
                mark = len(self.undo_stack)
                try:
                    statuses.append(await self._run_phase(phase))
                finally:
                    # the shield kept the closing undo going; a signal it held back still stops the run
                    if phase.restore and await shielded(self._undo_all(down_to=mark), self.abandon):
                        raise asyncio.CancelledError
        except asyncio.CancelledError:
            cancelled = True
            self._mark_unfinished(phases)
        except Abandoned:
            cancelled = True
            self._mark_unfinished(phases)
        except Exception as exc:
            self._mark_unfinished(phases)
            statuses.append("error")
            self.findings.setdefault("_run", {})["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            try:
                cancelled |= await shielded(self._cleanup(), self.abandon)
            except Abandoned:
                cancelled = True
                self._abandoned()
            cluster.stream_logs(None)
        results = [r.status for r in self.results] + statuses
        broken = self.journal_error is not None or bool(self.pending)
        outcome: Outcome = (
            "error"
            if cancelled or broken or "error" in results
            else ("failed" if "failed" in results else "passed")
        )
        return outcome, cancelled

    def _log_line(self, deployment: str, pod: str, line: str) -> None:
        self.logs.add(deployment, pod, line)
        self.bus.emit(ev.PodLog(time.monotonic(), pod, line, deployment))  # not journaled

    async def _arm_watchdogs(self) -> None:
        if not self.watchdog_lease or self.plan.read_only:  # nothing to put back: no watchdog
            return
        self.keeper = keeper = await Keeper.start(self.testbed, self.run_id, self.watchdog_lease)
        for place, why in keeper.unavailable.items():
            self.emit(ev.WatchdogChanged(place, "unavailable", why))
        for link in {ln.directory: ln for ln in keeper.links.values()}.values():
            pid = keeper.armed[link.directory]
            self.emit(
                ev.WatchdogChanged(link.place, "armed", link.directory, pid, self.watchdog_lease),
                durable=True,
            )

    async def _disarm_watchdogs(self) -> None:
        if self.keeper is None:
            return
        keeper, self.keeper = self.keeper, None
        lines = await keeper.close(disarm=True)
        for link in {ln.directory: ln for ln in keeper.links.values()}.values():
            said = [line for line in lines if line.startswith(link.place + ":")]
            self.emit(ev.WatchdogChanged(link.place, "disarmed", "; ".join(said)))

    def _abandoned(self) -> None:
        """A second signal: what was not reached stays pending, and the watchdogs (renewed no
        more) finish it once their lease runs out; the journal says so."""
        self.pending += reversed(self.undo_stack)
        self.undo_stack.clear()
        if self.keeper is not None:
            keeper, self.keeper = self.keeper, None
            keeper.stop_renewing()
            for link in {ln.directory: ln for ln in keeper.links.values()}.values():
                self.emit(
                    ev.WatchdogChanged(
                        link.place, "left", "renewal stopped: it restores what is pending when its lease ends"
                    )
                )

    async def _cleanup(self) -> None:
        await self._undo_all()
        for part in (self.testbed.access, self.testbed.cluster):
            try:
                async with asyncio.timeout(self.undo_timeout):
                    await part.end_run(self.run_id)
            except Exception as exc:
                self.findings.setdefault("_run", {})[f"end_run {part.name}"] = f"{type(exc).__name__}: {exc}"
        await self._disarm_watchdogs()
        await self._node_info(before=False)

    async def _node_info(self, *, before: bool) -> None:
        for node in self.testbed.nodes():
            try:
                async with asyncio.timeout(self.undo_timeout):
                    if before:
                        self.emit(ev.NodeInfo(node.name, kernel=await node.kernel()))
                    else:
                        keys = self.before.get(node.name, {})
                        after = {k: await node.read_sysctl(k) for k in keys}
                        self.emit(ev.NodeInfo(node.name, sysctl_before=keys, sysctl_after=after))
            except (ConnresetError, OSError, TimeoutError):
                continue

    def _skip(self, phase: PlannedPhase) -> None:
        self.emit(ev.PhaseStarted(phase.name, time.monotonic()))
        for flat in phase.steps:
            self._finish(flat, phase.name, "skipped", None, 0.0, "not run: an earlier step failed")
        self.emit(ev.PhaseFinished(phase.name, "skipped", time.monotonic()))

    def _mark_unfinished(self, phases: Sequence[PlannedPhase]) -> None:
        done = {(r.phase, r.name) for r in self.results}
        for phase in phases:
            for flat in phase.steps:
                if (phase.name, flat.name) not in done:
                    self._finish(flat, phase.name, "skipped", None, 0.0, "not run")

    def _finish(
        self, flat: FlatStep, phase: str, status: StepStatus, at: str | None, duration: float, detail: str
    ) -> None:
        self.results.append(StepResult(flat.name, flat.step.kind, phase, status, at, duration, detail))
        self.emit(
            ev.StepFinished(flat.name, flat.step.kind, phase, status, time.monotonic(), at, duration, detail)
        )

    async def _run_phase(self, phase: PlannedPhase) -> str:
        self.emit(ev.PhaseStarted(phase.name, time.monotonic()))
        waiting = {f.name: set(f.deps) & {g.name for g in phase.steps} for f in phase.steps}
        dependents: dict[str, list[FlatStep]] = {f.name: [] for f in phase.steps}
        for f in phase.steps:
            for d in waiting[f.name]:
                dependents[d].append(f)
        tasks: dict[str, asyncio.Task[None]] = {}
        stop = False

        async def one(flat: FlatStep, tg: asyncio.TaskGroup) -> None:
            nonlocal stop
            status, _ = await self._run_step(flat, phase.name)
            tasks.pop(flat.name, None)
            if status in ("failed", "error"):
                self._failed = True
                if self.fail_fast:
                    stop = True
                    for task in list(tasks.values()):
                        task.cancel()
                return
            if status != "ok" or stop:
                return
            for nxt in dependents[flat.name]:
                waiting[nxt.name].discard(flat.name)
                if not waiting[nxt.name]:
                    tasks[nxt.name] = tg.create_task(one(nxt, tg))

        async with asyncio.TaskGroup() as tg:
            for f in phase.steps:
                if not waiting[f.name]:
                    tasks[f.name] = tg.create_task(one(f, tg))
        ran = {r.name for r in self.results if r.phase == phase.name}
        for f in phase.steps:
            if f.name not in ran:
                self._finish(f, phase.name, "skipped", None, 0.0, "not run: an earlier step failed")
        status = phase_status([r.status for r in self.results if r.phase == phase.name])
        self.emit(ev.PhaseFinished(phase.name, status, time.monotonic()))
        return status

    async def _run_step(self, flat: FlatStep, phase: str) -> tuple[StepStatus, str]:
        step = flat.step
        at = ev.now_iso()
        t0 = time.monotonic()
        self.emit(ev.StepStarted(flat.name, step.kind, phase, t0, at))
        timeout = step.timeout or self.step_timeout
        timeout = scaled(timeout) if timeout is not None else None
        status: StepStatus
        try:
            async with asyncio.timeout(timeout):
                detail = await step.run(_Context(self, phase, flat.name)) or ""
            status = "ok"
        except TimeoutError:
            status, detail = "error", f"timed out after {timeout:g}s"
        except ExpectationFailed as exc:
            status, detail = "failed", str(exc)
        except asyncio.CancelledError:
            status, detail = "cancelled", "cancelled"
        except ConnresetError as exc:
            status, detail = "error", str(exc)
        except Exception as exc:  # a step's bug is reported with the step, the run carries on undoing
            status, detail = "error", f"{type(exc).__name__}: {exc}"
        self._finish(flat, phase, status, at, time.monotonic() - t0, detail)
        return status, detail

    async def _undo_all(self, down_to: int = 0) -> None:
        """Revert records newest first, each within the undo timeout; on cancellation (the
        cleanup was abandoned) the one in flight and those not reached stay pending."""
        while len(self.undo_stack) > down_to:
            record = self.undo_stack.pop()
            try:
                async with asyncio.timeout(self.undo_timeout):
                    verified, detail = await revert_once(record, self.testbed, self.keeper, self.undo_timeout)
                status: Literal["done", "failed"] = "done"
            except asyncio.CancelledError:
                self.pending += [record, *reversed(self.undo_stack[down_to:])]
                del self.undo_stack[down_to:]
                raise
            except TimeoutError:
                verified, detail, status = False, f"timed out after {self.undo_timeout:g}s", "failed"
            except Exception as exc:
                verified, detail, status = False, f"{type(exc).__name__}: {exc}", "failed"
            if not verified:
                self.pending.append(record)
            self.undo_results.append(
                UndoResult(record.action, record.node, record.describe(), status, verified, detail)
            )
            self.emit(ev.UndoFinished(record, status, verified, detail))


async def revert_once(
    record: UndoRecord, testbed: Testbed, keeper: Keeper | None, wait: float
) -> tuple[bool, str]:
    """Claim the undo from its node's watchdog, then revert it; if the watchdog has taken it
    (its lease ran out), read back what it did instead: never both."""
    if keeper is not None and await keeper.claim(record) == "watchdog":
        ok, said = await keeper.watchdog_result(record, wait)
        verified, detail = await verify(record, testbed)
        return ok and verified, f"{said}; {detail}"
    return await revert(record, testbed)


def _verdicts(
    plan: Plan, results: Sequence[StepResult], findings: Mapping[str, Mapping[str, object]]
) -> tuple[PhaseVerdict, ...]:
    out = []
    for phase in plan.phases:
        mine = [r for r in results if r.phase == phase.name]
        failures = tuple(f"{r.name}: {r.detail}" for r in mine if r.status in ("failed", "error"))
        out.append(
            PhaseVerdict(
                phase.name,
                phase_status([r.status for r in mine]),
                phase.expect,
                dict(findings.get(phase.name, {})),
                failures,
            )
        )
    return tuple(out)


async def preflight(testbed: Testbed, plan: Plan, run_id: str) -> None:
    """What can only be checked on the open testbed, before anything changes.

    Raises:
        ValidationError: a step needs what the testbed lacks, names a node it does not have, or
            would deploy over a Deployment this run did not create.
    """
    check_plan(plan.phases, testbed)
    for phase in plan.phases:
        for flat in phase.steps:
            for name in flat.step.creates():
                existing = await testbed.cluster.get(name)
                if existing is not None and existing.run_id != run_id:
                    raise ValidationError(_not_ours(name, existing.run_id), step=flat.name)


async def run_on(
    testbed: Testbed,
    plan: Plan,
    options: RunOptions | None = None,
    *,
    journal: Journal | None = None,
    run_id: str | None = None,
    **settings: Any,
) -> RunResult:
    """Run a plan on an open testbed and return its typed result; the testbed stays open.

    ``options`` (:class:`RunOptions`) are the run's settings; single ones may be given as
    keywords beside it (``step_timeout=5``). Every mutating step's undo is written durably to
    ``journal`` (a writer; ``options.journal`` is its path, for the result) before the change.
    Whatever happens (pass, failure, error, cancellation), the undos run newest first, each
    within ``undo_timeout`` seconds and read back. Setting ``abandon`` (a second Ctrl-C) stops
    waiting for them: what is left is listed in ``RunResult.pending`` and stays pending in the
    journal.

    Where the node access offers watchdogs (the lab, SSH, docker), each node-side undo is also
    handed to a watchdog on the node, which applies it by itself if the lease is not renewed
    within ``watchdog_lease`` seconds (None or 0: no watchdogs). It is disarmed when the run
    ends; if the cleanup is abandoned, renewal stops and what is pending is left to it.

    Raises:
        ValidationError: the plan does not fit the testbed; nothing was touched.
        asyncio.CancelledError: the run was cancelled; the undos ran (or were abandoned) first.
    """
    if not testbed.is_open:
        raise BackendError(
            f"testbed {testbed.name} is not open: use `async with testbed:` or connreset.run()"
        )
    options = RunOptions.of(options, **settings)
    run_id = run_id or new_run_id()
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?", run_id):
        raise ValidationError(f"run id must be a lowercase label value (a-z, 0-9, - .), got {run_id!r}")
    await preflight(testbed, plan, run_id)
    bus = ev.EventBus(list(options.subscribers))
    engine = Engine(plan, testbed, bus, run_id=run_id, options=options, journal=journal)
    engine.emit(
        ev.RunStarted(
            plan.experiment.name,
            redact(plan.params),  # for people and the journal: a --set token=... stays in memory
            testbed.name,
            ev.now_iso(),
            {**environment(), **_fingerprint(testbed)},
            tuple(p.name for p in plan.phases),
            sum(len(p.steps) for p in plan.phases),
            run_id,
            testbed.spec_json(),
            time.monotonic(),
            {p.name: p.expect for p in plan.phases if p.expect},
            plan.experiment.description,
        ),
        durable=True,  # on disk before anything changes: `connreset restore` can always find the run
    )
    outcome, cancelled = await engine.run()
    pending = tuple(f"{r.node}: {r.describe()}" for r in engine.pending)
    judged = claims.judge(plan.experiment.claims, engine.findings)
    concluded = claims.conclude(plan.experiment.conclusions, engine.findings)
    engine.emit(
        ev.RunFinished(
            outcome,
            ev.now_iso(),
            time.monotonic(),
            cancelled,
            pending,
            tuple(c.to_json() for c in judged),
            concluded,
        )
    )
    result = RunResult(
        plan.experiment.name,
        dict(plan.params),
        testbed.name,
        outcome,
        cancelled,
        tuple(engine.results),
        _verdicts(plan, engine.results, engine.findings),
        engine.findings,
        tuple(engine.undo_results),
        options.journal,
        run_id,
        pending,
        judged,
        concluded,
    )
    if cancelled:
        raise RunCancelled(result)
    return result


class RunCancelled(asyncio.CancelledError):
    """The run was cancelled; its undos ran (or were abandoned). ``result`` says what happened."""

    def __init__(self, result: RunResult) -> None:
        super().__init__("run cancelled")
        self.result = result
