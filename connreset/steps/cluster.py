"""Steps on workloads: deploy, scale, delete, and assertions on pods and their logs."""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import TYPE_CHECKING, Any

import attrs

from connreset.errors import ExpectationFailed
from connreset.steps.base import Replicas, Step, StepContext, non_negative, positive
from connreset.steps.polling import poll
from connreset.testbed import DeploymentSpec, PodStatus, Workload
from connreset.testbed.probes import Liveness

if TYPE_CHECKING:
    from connreset.testbed import Testbed

PROGRESS_EVERY = 1.0  # seconds between progress reports of a long step

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _dns_label(_: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if not _DNS_LABEL.match(value):
        raise ValueError(f"{attribute.name} must be a DNS label (a-z, 0-9, -), got {value!r}")


def _port(_: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536):
        raise ValueError(f"{attribute.name} must be a TCP port (an integer from 1 to 65535), got {value!r}")


@attrs.frozen
class Deploy(Step):
    """Create a Deployment (and a Service when ``port`` is given).

    ``liveness`` gives its pods kubelet's liveness probe (:class:`~connreset.testbed.probes.Liveness`):
    sent from the node, through its conntrack table; failing ones restart the pod.
    """

    kind = "deploy"
    requires = frozenset({"cluster"})
    mutating = True

    deployment: str = attrs.field(validator=_dns_label)
    workload: Workload = attrs.field(validator=attrs.validators.instance_of(Workload))
    replicas: int = attrs.field(default=1, validator=non_negative)
    node: str | None = None
    port: int | None = attrs.field(default=None, validator=_port)
    liveness: Liveness | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(Liveness))
    )

    def default_name(self) -> str:
        return f"deploy {self.deployment}"

    def spec(self) -> DeploymentSpec:
        return DeploymentSpec(
            self.deployment,
            self.workload,
            self.replicas,
            self.node,
            self.port,
            {"app": self.deployment},
            self.liveness,
        )

    async def run(self, ctx: StepContext) -> str:
        await ctx.deploy(self.spec())
        notes = ctx.cluster.deploy_notes(self.spec())
        for note in notes:
            ctx.note(note)
        return f"{self.replicas} × {self.workload.name}" + "".join(f"; {n}" for n in notes)

    def creates(self) -> tuple[str, ...]:
        return (self.deployment,)

    def target_nodes(self) -> tuple[str, ...]:
        return (self.node,) if self.node is not None else ()

    def sets_replicas(self) -> Replicas:
        return Replicas(self.deployment, self.replicas, self.node, deploys=True)

    def workloads(self) -> tuple[Workload, ...]:
        return (self.workload,)

    async def plan(self, testbed: Testbed) -> list[str]:
        where = f" on {self.node}" if self.node else ""
        svc = f", Service port {self.port}" if self.port else ""
        probe = f", {self.liveness.describe()}" if self.liveness else ""
        head = f"cluster  deploy {self.deployment}: {self.replicas} × {self.workload.name}{where}{svc}{probe}"
        notes = [f"note: {n}" for n in testbed.cluster.deploy_notes(self.spec())]
        return [head, *notes, *testbed.cluster.plan_deploy(self.spec())]


@attrs.frozen
class Scale(Step):
    """Set a Deployment's replica count."""

    kind = "scale"
    requires = frozenset({"cluster"})
    mutating = True

    deployment: str = attrs.field(validator=_dns_label)
    replicas: int = attrs.field(validator=non_negative)

    def default_name(self) -> str:
        return f"scale {self.deployment} to {self.replicas}"

    def sets_replicas(self) -> Replicas:
        return Replicas(self.deployment, self.replicas)

    async def run(self, ctx: StepContext) -> str:
        scaling = asyncio.create_task(ctx.scale(self.deployment, self.replicas))
        try:
            while True:  # until the cluster says the new pods have started: Running pods, each second
                done, _ = await asyncio.wait({scaling}, timeout=PROGRESS_EVERY)
                if done:
                    break
                running = sum(p.phase == "Running" for p in await _pods(ctx, self.deployment))
                ctx.progress(running, self.replicas, "pods Running")
        finally:
            if not scaling.done():
                scaling.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await scaling
        scaling.result()
        return f"replicas={self.replicas}"

    async def plan(self, testbed: Testbed) -> list[str]:
        return [f"cluster  scale {self.deployment}: → {self.replicas} replicas"]


async def _pods(ctx: StepContext, deployment: str) -> list[PodStatus]:
    return await ctx.pods(deployment)


def _summary(pods: list[PodStatus]) -> str:
    return ", ".join(f"{p.name}={p.phase}/{p.restarts}" for p in pods) or "no pods"


@attrs.frozen
class _PodAssertion(Step):
    """Poll pods of a deployment until a condition holds, or ``within`` seconds pass.

    With ``expect=False`` the condition must *not* hold for the whole window. ``record`` names a
    finding that receives whether the condition was seen; with ``expect=None`` the step only
    records and never fails.
    """

    requires = frozenset({"cluster"})

    deployment: str = attrs.field(validator=_dns_label)
    within: float = attrs.field(default=60.0, validator=positive)
    expect: bool | None = True
    record: str | None = None

    async def seen(self, ctx: StepContext) -> bool:
        raise NotImplementedError

    async def watch(self, ctx: StepContext) -> bool:
        """Whether the condition was seen within the window (stopping at the first sighting)."""
        return await poll(lambda: self.seen(ctx), self.within, every=0.1)

    async def run(self, ctx: StepContext) -> str:
        return await self.conclude(ctx, await self.watch(ctx), self.describe())

    async def conclude(self, ctx: StepContext, held: bool, what: str) -> str:
        """Record the finding; fail when ``held`` is not what was expected."""
        if self.record:
            ctx.finding(self.record, held)
        detail = f"{what}: {'seen' if held else 'not seen'} within {self.within:g}s"
        if self.expect is not None and held != self.expect:
            pods = _summary(await _pods(ctx, self.deployment))
            raise ExpectationFailed(f"{detail} (expected {'it' if self.expect else 'none'}); {pods}")
        return detail


@attrs.frozen
class AssertCrashLoop(_PodAssertion):
    """A pod of the deployment enters CrashLoopBackOff (or, ``expect=False``, none does)."""

    kind = "assert-crashloop"

    def default_name(self) -> str:
        return f"{'assert' if self.expect is not False else 'refute'} {self.deployment} crashloop"

    def describe(self) -> str:
        return f"{self.deployment} in CrashLoopBackOff"

    async def seen(self, ctx: StepContext) -> bool:
        pods = await _pods(ctx, self.deployment)
        return any(p.phase == "CrashLoopBackOff" for p in pods)

    async def run(self, ctx: StepContext) -> str:
        """CrashLoopBackOff; or, for pods that keep running where the lab's workload exits
        (``PodStatus.crash_stand_in``), the line they log instead, written during the window.
        The detail, a note and the finding ``<record>_checked`` say when the stand-in was used."""
        start = ctx.logs.last_seq()
        stand_ins: dict[str, re.Pattern[str]] = {}

        async def seen() -> bool:
            pods = await _pods(ctx, self.deployment)
            if any(p.phase == "CrashLoopBackOff" for p in pods):
                return True
            for p in pods:
                if p.crash_stand_in and p.crash_stand_in not in stand_ins:
                    stand_ins[p.crash_stand_in] = re.compile(p.crash_stand_in)
            return any(ctx.logs.count(self.deployment, rx, after=start) for rx in stand_ins.values())

        held = await poll(seen, self.within, every=0.1)
        if not stand_ins:
            return await self.conclude(ctx, held, self.describe())
        lines = " or ".join(f"/{s}/" for s in stand_ins)
        checked = f"CrashLoopBackOff, or {lines} in its logs (its pods log that and keep running)"
        ctx.note(f"{self.deployment}: checked {checked}")
        if self.record:
            ctx.finding(f"{self.record}_checked", checked)
        return await self.conclude(ctx, held, f"{self.deployment}: {checked}")


@attrs.frozen
class AssertRunning(_PodAssertion):
    """All ``replicas`` pods (default: at least one, all of them) are Running."""

    kind = "assert-running"
    replicas: int | None = attrs.field(default=None, validator=attrs.validators.optional(non_negative))

    def default_name(self) -> str:
        return f"assert {self.deployment} running"

    def describe(self) -> str:
        return f"{self.deployment} Running" + (f" ×{self.replicas}" if self.replicas else "")

    async def seen(self, ctx: StepContext) -> bool:
        pods = await _pods(ctx, self.deployment)
        running = [p for p in pods if p.phase == "Running"]
        want = self.replicas if self.replicas is not None else max(len(pods), 1)
        return len(running) >= want and len(running) == len(pods)


@attrs.frozen
class AssertLogs(_PodAssertion):
    """A regular expression appears in the logs of some pod of the deployment."""

    kind = "assert-logs"
    requires = frozenset({"cluster", "logs"})
    pattern: str = ""

    def __attrs_post_init__(self) -> None:
        if not self.pattern:
            raise ValueError("pattern must be a non-empty regular expression")
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"pattern {self.pattern!r} is not a regular expression: {exc}") from None

    def default_name(self) -> str:
        verb = "assert" if self.expect is not False else "refute"
        return f"{verb} {self.deployment} logs /{self.pattern}/"

    def describe(self) -> str:
        return f"/{self.pattern}/ in {self.deployment} logs"

    async def watch(self, ctx: StepContext) -> bool:
        """Wait on the log index for a matching line: no polling of whole logs."""
        return await ctx.logs.wait_for(self.deployment, re.compile(self.pattern), self.within) is not None


@attrs.frozen
class Delete(Step):
    """Delete a Deployment (and its Service). Nothing to undo: recreate it with Deploy."""

    kind = "delete"
    requires = frozenset({"cluster"})
    mutating = True

    deployment: str = attrs.field(validator=_dns_label)

    def default_name(self) -> str:
        return f"delete {self.deployment}"

    def sets_replicas(self) -> Replicas:
        return Replicas(self.deployment, 0)

    async def run(self, ctx: StepContext) -> str:
        await ctx.delete(self.deployment)
        return "deleted"

    async def plan(self, testbed: Testbed) -> list[str]:
        return [f"cluster  delete {self.deployment}"]


@attrs.frozen
class CountLogs(Step):
    """Count log lines matching ``pattern`` in a deployment's pods since the last count.

    Records the finding ``record`` (per phase) with the number of new matching lines, and
    ``record + "_total"`` with the running total.
    """

    kind = "count-logs"
    requires = frozenset({"cluster", "logs"})

    deployment: str = attrs.field(validator=_dns_label)
    pattern: str
    record: str

    def default_name(self) -> str:
        return f"count {self.record} in {self.deployment} logs"

    async def run(self, ctx: StepContext) -> str:
        key = f"count-logs:{self.deployment}:{self.record}"
        last = ctx.state.get(key, 0)
        assert isinstance(last, int)
        ctx.state[key] = ctx.logs.last_seq()
        new = ctx.logs.count(self.deployment, re.compile(self.pattern), after=last)
        ctx.finding(self.record, new)
        return f"{new} new line(s) matching /{self.pattern}/"


@attrs.frozen
class RecordPods(Step):
    """Record a deployment's pod states (phase and restarts) as a finding."""

    kind = "record-pods"
    requires = frozenset({"cluster"})

    deployment: str = attrs.field(validator=_dns_label)
    record: str | None = None

    def default_name(self) -> str:
        return f"record {self.deployment} state"

    async def run(self, ctx: StepContext) -> str:
        pods = await _pods(ctx, self.deployment)
        phases = sorted({p.phase for p in pods})
        summary = f"{'/'.join(phases) or 'no pods'}, restarts {sum(p.restarts for p in pods)}"
        ctx.finding(self.record or self.deployment, summary)
        return summary
