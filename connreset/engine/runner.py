"""The asyncio engine: runs each phase's step graph, undoes everything, publishes events."""

from __future__ import annotations

import asyncio
import platform
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from connreset import __version__
from connreset.backends.base import Backend, DeploymentSpec, Node, Rule, StreamsPodLogs
from connreset.engine import events as ev
from connreset.engine.results import (
    Outcome,
    PhaseVerdict,
    RunResult,
    StepResult,
    StepStatus,
    UndoResult,
    phase_status,
)
from connreset.engine.undo import UndoRecord, revert
from connreset.errors import ConnresetError, ExpectationFailed, ValidationError
from connreset.experiment import Experiment, PlannedPhase, check_backend
from connreset.graph import FlatStep
from connreset.loader import Loaded, build

Target = Experiment | Callable[..., Experiment] | Loaded


def environment() -> dict[str, str]:
    return {
        "connreset": __version__,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "machine": platform.machine(),
    }


async def shielded(coro: Coroutine[Any, Any, Any]) -> bool:
    """Run ``coro`` to the end even if we are cancelled meanwhile; return True if we were."""
    task = asyncio.ensure_future(coro)
    cancelled = False
    while True:
        try:
            await asyncio.shield(task)
            return cancelled
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True


class _Context:
    """The StepContext the engine gives one running step."""

    def __init__(self, engine: Engine, phase: str, step: str) -> None:
        self._engine = engine
        self.backend = engine.backend
        self.phase = phase
        self.step = step
        self.state = engine.state

    @property
    def cluster(self) -> Any:
        return self.backend.cluster

    def nodes(self, names: Sequence[str] | None = None) -> Sequence[Node]:
        return self._engine.select_nodes(names)

    async def set_sysctl(self, node: Node, key: str, value: str) -> str:
        old = await node.read_sysctl(key)
        self._engine.remember_before(node.name, key, old)
        self._engine.record_undo("sysctl", node.name, key, value=old)
        await node.write_sysctl(key, value)
        return old

    async def add_rule(self, node: Node, rule: Rule) -> None:
        self._engine.record_undo("rule", node.name, rule.spec(), rule=rule)
        await node.add_rule(rule)

    async def deploy(self, spec: DeploymentSpec) -> None:
        self._engine.created.add(spec.name)
        self._engine.record_undo("delete-deployment", "cluster", spec.name)
        await self.backend.cluster.deploy(spec)

    async def scale(self, deployment: str, replicas: int) -> None:
        if deployment not in self._engine.created:
            before = len(await self.backend.cluster.pods(deployment))
            self._engine.record_undo("scale", "cluster", deployment, value=str(before))
        await self.backend.cluster.scale(deployment, replicas)

    def sample(self, node: str, metric: str, value: float) -> None:
        self._engine.bus.emit(ev.Sample(time.monotonic(), node, metric, value))

    def finding(self, key: str, value: object) -> None:
        self._engine.findings.setdefault(self.phase, {})[key] = value
        self._engine.bus.emit(ev.FindingRecorded(self.phase, key, value))

    def note(self, message: str) -> None:
        self._engine.bus.emit(ev.StepNote(self.step, self.phase, message))


class Engine:
    """One run of one compiled experiment on one opened backend."""

    def __init__(
        self,
        loaded: Loaded,
        backend: Backend,
        bus: ev.EventBus,
        *,
        fail_fast: bool = True,
        step_timeout: float | None = None,
    ) -> None:
        self.loaded = loaded
        self.backend = backend
        self.bus = bus
        self.fail_fast = fail_fast
        self.step_timeout = step_timeout
        self.results: list[StepResult] = []
        self.findings: dict[str, dict[str, object]] = {}
        self.undo_stack: list[UndoRecord] = []
        self.undo_results: list[UndoResult] = []
        self.created: set[str] = set()
        self.state: dict[str, object] = {}
        self.before: dict[str, dict[str, str]] = {}
        self._failed = False

    # -- bookkeeping used by steps through _Context ------------------------------------------
    def select_nodes(self, names: Sequence[str] | None) -> Sequence[Node]:
        nodes = list(self.backend.nodes())
        if names is None:
            return nodes
        by_name = {n.name: n for n in nodes}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise ValidationError(f"unknown node(s) {', '.join(missing)}; have {', '.join(by_name)}")
        return [by_name[n] for n in names]

    def remember_before(self, node: str, key: str, value: str) -> None:
        self.before.setdefault(node, {}).setdefault(key, value)

    def record_undo(
        self, action: Any, node: str, target: str, *, value: str | None = None, rule: Rule | None = None
    ) -> None:
        record = UndoRecord(len(self.undo_stack) + 1, action, node, target, value, rule)
        self.undo_stack.append(record)
        self.bus.emit(ev.UndoRecorded(record))  # the journal writes it to disk before we act

    # -- running --------------------------------------------------------------------------------
    async def run(self) -> tuple[Outcome, bool]:
        """Run every phase, then every undo; return (outcome, cancelled)."""
        cancelled = False
        statuses: list[str] = []
        phases = self.loaded.phases
        try:
            await self._node_info(before=True)
            for phase in phases:
                if self._failed and self.fail_fast:
                    self._skip(phase)
                    statuses.append("skipped")
                    continue
                mark = len(self.undo_stack)
                try:
                    statuses.append(await self._run_phase(phase))
                finally:
                    if phase.restore:
                        await shielded(self._undo_all(down_to=mark))
        except asyncio.CancelledError:
            cancelled = True
            self._mark_unfinished(phases)
        except Exception as exc:
            self._mark_unfinished(phases)
            statuses.append("error")
            self.findings.setdefault("_run", {})["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            cancelled |= await shielded(self._undo_all())
            cancelled |= await shielded(self._node_info(before=False))
        results = [r.status for r in self.results] + statuses
        outcome: Outcome = (
            "error" if cancelled or "error" in results else ("failed" if "failed" in results else "passed")
        )
        return outcome, cancelled

    async def _node_info(self, *, before: bool) -> None:
        for node in self.backend.nodes():
            try:
                if before:
                    self.bus.emit(ev.NodeInfo(node.name, kernel=await node.kernel()))
                else:
                    keys = self.before.get(node.name, {})
                    after = {k: await node.read_sysctl(k) for k in keys}
                    self.bus.emit(ev.NodeInfo(node.name, sysctl_before=keys, sysctl_after=after))
            except ConnresetError:
                continue

    def _skip(self, phase: PlannedPhase) -> None:
        self.bus.emit(ev.PhaseStarted(phase.name, time.monotonic()))
        for flat in phase.steps:
            self._finish(flat, phase.name, "skipped", None, 0.0, "not run: an earlier step failed")
        self.bus.emit(ev.PhaseFinished(phase.name, "skipped", time.monotonic()))

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
        self.bus.emit(
            ev.StepFinished(flat.name, flat.step.kind, phase, status, time.monotonic(), at, duration, detail)
        )

    async def _run_phase(self, phase: PlannedPhase) -> str:
        self.bus.emit(ev.PhaseStarted(phase.name, time.monotonic()))
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
        self.bus.emit(ev.PhaseFinished(phase.name, status, time.monotonic()))
        return status

    async def _run_step(self, flat: FlatStep, phase: str) -> tuple[StepStatus, str]:
        step = flat.step
        at = ev.now_iso()
        t0 = time.monotonic()
        self.bus.emit(ev.StepStarted(flat.name, step.kind, phase, t0, at))
        timeout = step.timeout or self.step_timeout
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
        while len(self.undo_stack) > down_to:
            record = self.undo_stack.pop()
            status: Literal["done", "failed"] = "done"
            try:
                verified, detail = await revert(record, self.backend)
            except Exception as exc:
                verified, detail, status = False, f"{type(exc).__name__}: {exc}", "failed"
            self.undo_results.append(
                UndoResult(record.action, record.node, record.describe(), status, verified, detail)
            )
            self.bus.emit(ev.UndoFinished(record, status, verified, detail))


def _verdicts(
    loaded: Loaded, results: Sequence[StepResult], findings: Mapping[str, Mapping[str, object]]
) -> tuple[PhaseVerdict, ...]:
    out = []
    for phase in loaded.phases:
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


def _default_backend() -> Backend:
    from connreset.backends.registry import load

    return load("lab")()


async def run(
    experiment: Target,
    backend: Backend | None = None,
    params: Mapping[str, object] | None = None,
    *,
    raw_params: Mapping[str, str] | None = None,
    subscribers: Sequence[ev.Subscriber] = (),
    journal: str | Path | None = None,
    fail_fast: bool = True,
    step_timeout: float | None = None,
) -> RunResult:
    """Run an experiment on a backend (the lab by default) and return its typed result.

    Every mutating step records its undo before it acts; whatever happens (pass, failure, error,
    cancellation), the undos run in reverse order, shielded from cancellation, each read back.

    Raises:
        ValidationError: the experiment, its parameters, or the backend choice are invalid;
            nothing was touched.
        BackendError: the backend could not be opened (e.g. NeedsRoot for the lab); nothing ran.
        asyncio.CancelledError: the run was cancelled; undos ran before this propagates.
    """
    loaded = experiment if isinstance(experiment, Loaded) else build(experiment, params, raw_params)
    backend = backend if backend is not None else _default_backend()
    check_backend(loaded.phases, backend.capabilities, backend.name, backend.node_names())
    bus = ev.EventBus(list(subscribers))
    writer = None
    if journal is not None:
        from connreset.journal import JournalWriter

        writer = JournalWriter(Path(journal))
        bus.subscribe(writer)
    phases = loaded.phases
    bus.emit(
        ev.RunStarted(
            loaded.experiment.name,
            dict(loaded.params),
            backend.name,
            ev.now_iso(),
            environment(),
            tuple(p.name for p in phases),
            sum(len(p.steps) for p in phases),
        )
    )
    engine = Engine(loaded, backend, bus, fail_fast=fail_fast, step_timeout=step_timeout)
    outcome: Outcome = "error"
    cancelled = False
    try:
        try:
            await backend.__aenter__()
        except ConnresetError as exc:  # set-up failed: nothing ran; the caller gets the error
            engine.findings.setdefault("_run", {})["error"] = str(exc)
            raise
        if isinstance(backend, StreamsPodLogs):
            backend.stream_pod_logs(lambda pod, line: bus.emit(ev.PodLog(time.monotonic(), pod, line)))
        try:
            outcome, cancelled = await engine.run()
        finally:
            if isinstance(backend, StreamsPodLogs):
                backend.stream_pod_logs(None)
            await backend.__aexit__(None, None, None)
    except asyncio.CancelledError:
        cancelled = True
    finally:
        bus.emit(ev.RunFinished(outcome, ev.now_iso(), time.monotonic(), cancelled))
        if writer is not None:
            writer.close()
    result = RunResult(
        loaded.experiment.name,
        dict(loaded.params),
        backend.name,
        outcome,
        cancelled,
        tuple(engine.results),
        _verdicts(loaded, engine.results, engine.findings),
        engine.findings,
        tuple(engine.undo_results),
        str(journal) if journal else None,
    )
    if cancelled:
        raise asyncio.CancelledError
    return result


def run_sync(
    experiment: Target,
    backend: Backend | None = None,
    params: Mapping[str, object] | None = None,
    **kwargs: Any,
) -> RunResult:
    """The synchronous twin of :func:`run`."""
    return asyncio.run(run(experiment, backend, params, **kwargs))
