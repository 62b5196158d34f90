"""Steps on nodes' kernels: sysctls, kube-proxy's fixes, and conntrack observation."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import attrs

from connreset.errors import BackendError, ExpectationFailed, ValidationError
from connreset.kernel import sysctl
from connreset.kernel.node import Rule
from connreset.steps.base import Step, StepContext, node_names, positive
from connreset.steps.polling import poll

if TYPE_CHECKING:
    from connreset.kernel.node import NodeKernel
    from connreset.testbed import Testbed

#: kube-proxy's fix for #74839 (PR #74840): drop what conntrack marks INVALID before forwarding.
DROP_INVALID = Rule("filter", "KUBE-FORWARD", ("-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP"))

Fix = Literal["be-liberal", "drop-invalid", "bigger-table"]
FIXES: tuple[str, ...] = ("be-liberal", "drop-invalid", "bigger-table")


async def _set_everywhere(ctx: StepContext, nodes: Sequence[NodeKernel], key: str, value: str) -> str:
    """Write a key on each node, once for keys the testbed's nodes share through one kernel."""
    if ctx.testbed.sysctl_scope(key) == "host":
        old = await ctx.set_sysctl(nodes[0], key, value)
        ctx.note(f"{key}: {old} → {value} (host-global: one value for every node)")
        return f"{key}={value} (host-global, was {old})" + await _stored(ctx, nodes[:1], key, value)
    olds = await asyncio.gather(*(ctx.set_sysctl(n, key, value) for n in nodes))
    return f"{key}={value} on {len(nodes)} node(s), was {','.join(sorted(set(olds)))}" + await _stored(
        ctx, nodes, key, value
    )


async def _stored(ctx: StepContext, nodes: Sequence[NodeKernel], key: str, value: str) -> str:
    """Read back; when the kernel kept another value (it rounds buckets up), say so and record it."""
    stored = sorted(set(await asyncio.gather(*(n.read_sysctl(key) for n in nodes))))
    if stored == [value]:
        return ""
    short = key.rsplit(".", 1)[-1]
    ctx.finding(f"{short}_stored", stored[0] if len(stored) == 1 else stored)
    ctx.note(f"{key}: asked for {value}, the kernel stored {', '.join(stored)}")
    return f"; the kernel stored {', '.join(stored)}"


async def _plan_sysctl(testbed: Testbed, nodes: tuple[str, ...] | None, key: str, value: str) -> list[str]:
    names = list(nodes or testbed.node_names() or ["(every node)"])
    if testbed.sysctl_scope(key) == "host":
        names = names[:1]
    lines = []
    for name in names:
        current = await testbed.preview_sysctl(name, key)
        scope = " (host-global)" if testbed.sysctl_scope(key) == "host" else ""
        lines.append(f"{name}  {key}  {current if current is not None else '?'} → {value}{scope}")
    return lines


class _OnNodes(Step):
    """A step on some nodes' kernels: its ``nodes`` (None: every node) are checked before a run."""

    nodes: tuple[str, ...] | None

    def target_nodes(self) -> tuple[str, ...]:
        return self.nodes or ()


@attrs.frozen
class SetSysctl(_OnNodes):
    """Set a sysctl on nodes (all by default). Global keys are set once, for the whole host."""

    kind = "set-sysctl"
    mutating = True

    key: str
    value: int | str
    nodes: tuple[str, ...] | None = attrs.field(default=None, converter=node_names)

    def __attrs_post_init__(self) -> None:
        full, value = sysctl.check(self.key, self.value)
        object.__setattr__(self, "key", full)
        object.__setattr__(self, "value", value)

    def default_name(self) -> str:
        return f"{self.key.rsplit('.', 1)[-1]}={self.value}"

    async def run(self, ctx: StepContext) -> str:
        return await _set_everywhere(ctx, ctx.nodes(self.nodes), self.key, str(self.value))

    @property
    def requires(self) -> frozenset[str]:  # type: ignore[override]
        return frozenset({"sysctl", "host-sysctl"} if sysctl.is_host_global(self.key) else {"sysctl"})

    async def plan(self, testbed: Testbed) -> list[str]:
        return await _plan_sysctl(testbed, self.nodes, self.key, str(self.value))


@attrs.frozen
class ApplyFix(_OnNodes):
    """Apply one of the known fixes for connection resets; it is undone at the end of the run.

    - ``be-liberal``: ``nf_conntrack_tcp_be_liberal=1`` on every node;
    - ``drop-invalid``: kube-proxy's ``-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP``
      (v1.15+ iptables mode; left as it is where kube-proxy wrote it already). A kube-proxy
      without such a rule (nftables or IPVS mode, e.g. the lab's ``proxy=nftables``) has nothing
      to add: its node access withholds ``iptables`` and the run is refused before it starts;
    - ``bigger-table``: ``nf_conntrack_max=max`` and ``nf_conntrack_buckets=buckets``.
    """

    kind = "apply-fix"
    mutating = True

    fix: str = attrs.field(validator=attrs.validators.in_(FIXES))
    max: int | None = None
    buckets: int | None = None
    nodes: tuple[str, ...] | None = attrs.field(default=None, converter=node_names)

    def __attrs_post_init__(self) -> None:
        if self.fix == "bigger-table":
            if self.max is None or self.buckets is None:
                raise ValidationError("fix bigger-table needs max= and buckets=")
            sysctl.check("nf_conntrack_max", self.max)
            sysctl.check("nf_conntrack_buckets", self.buckets)
        elif self.max is not None or self.buckets is not None:
            raise ValidationError(f"fix {self.fix} takes no max= or buckets=")

    @property
    def requires(self) -> frozenset[str]:  # type: ignore[override]
        if self.fix == "drop-invalid":
            return frozenset({"iptables"})
        return frozenset({"sysctl", "host-sysctl"} if self.fix == "bigger-table" else {"sysctl"})

    def default_name(self) -> str:
        return f"fix {self.fix}"

    def _sysctls(self) -> list[tuple[str, str]]:
        if self.fix == "be-liberal":
            return [("net.netfilter.nf_conntrack_tcp_be_liberal", "1")]
        if self.fix == "bigger-table":
            return [
                ("net.netfilter.nf_conntrack_buckets", str(self.buckets)),
                ("net.netfilter.nf_conntrack_max", str(self.max)),
            ]
        return []

    async def run(self, ctx: StepContext) -> str:
        nodes = ctx.nodes(self.nodes)
        if self.fix == "drop-invalid":
            added = await asyncio.gather(*(ctx.add_rule(n, DROP_INVALID) for n in nodes))
            there = len(nodes) - sum(added)
            return f"{DROP_INVALID.spec()} on {len(nodes)} node(s)" + (
                f" ({there} had it already: left as it was)" if there else ""
            )
        return "; ".join([await _set_everywhere(ctx, nodes, k, v) for k, v in self._sysctls()])

    async def plan(self, testbed: Testbed) -> list[str]:
        if self.fix == "drop-invalid":
            names = self.nodes or testbed.node_names() or ["(every node)"]
            return [f"{n}  iptables {DROP_INVALID.spec()}" for n in names]
        lines: list[str] = []
        for key, value in self._sysctls():
            lines += await _plan_sysctl(testbed, self.nodes, key, value)
        return lines


@attrs.frozen
class FlushConntrack(_OnNodes):
    """Empty each node's conntrack table (``conntrack -F``), e.g. between a sweep's trials.

    Nothing to undo: traffic makes new entries; the connections themselves are untouched.
    """

    kind = "flush-conntrack"
    requires = frozenset({"conntrack", "exec"})

    nodes: tuple[str, ...] | None = attrs.field(default=None, converter=node_names)

    def default_name(self) -> str:
        return "flush conntrack"

    async def run(self, ctx: StepContext) -> str:
        nodes = ctx.nodes(self.nodes)
        await asyncio.gather(*(n.flush_conntrack() for n in nodes))
        return f"flushed on {len(nodes)} node(s)"


PROGRESS_EVERY = 1.0  # seconds between progress reports of a window
STATS = ("drop", "early_drop", "insert_failed", "invalid", "chaintoolong", "insert")
MAX_KEY = "net.netfilter.nf_conntrack_max"


@attrs.frozen
class Observe(_OnNodes):
    """Sample each node's conntrack count into the journal, and sum up what the window showed.

    Samples each node's ``nf_conntrack_max`` once (``conntrack_max``), then ``conntrack_count``
    every ``every`` seconds for ``duration`` seconds, reporting progress each second. Findings:
    ``count_peak`` (per node), ``max`` (``nf_conntrack_max``), and the growth of each
    ``conntrack -S`` counter over the window (``drop``, ``invalid``, ... per node).
    """

    kind = "observe"
    requires = frozenset({"conntrack"})

    duration: float = attrs.field(validator=positive)
    every: float = attrs.field(default=0.1, validator=positive)
    nodes: tuple[str, ...] | None = attrs.field(default=None, converter=node_names)

    def default_name(self) -> str:
        return f"observe {self.duration:g}s"

    async def run(self, ctx: StepContext) -> str:
        nodes = ctx.nodes(self.nodes)
        loop = asyncio.get_running_loop()
        before = await asyncio.gather(*(n.conntrack_stats() for n in nodes))
        lines_before = await asyncio.gather(*(_table_full_lines(n) for n in nodes))
        peaks = {n.name: 0 for n in nodes}
        limits = await _limits(nodes)
        for name, limit in limits.items():
            ctx.sample(name, "conntrack_max", limit)
        start = loop.time()
        end, told = start + self.duration, start
        while True:
            counts = await asyncio.gather(*(n.conntrack_count() for n in nodes))
            for node, count in zip(nodes, counts, strict=True):
                ctx.sample(node.name, "conntrack_count", count)
                peaks[node.name] = max(peaks[node.name], count)
            now = loop.time()
            if now >= end:
                break
            if now - told >= PROGRESS_EVERY:
                told = now
                counted = ", ".join(
                    f"{n.name} {c}/{limits[n.name]}" for n, c in zip(nodes, counts, strict=True)
                )
                ctx.progress(round(now - start, 1), self.duration, "s", f"conntrack count {counted}")
            await asyncio.sleep(min(self.every, max(end - loop.time(), 0)))
        after = await asyncio.gather(*(n.conntrack_stats() for n in nodes))
        grown = {
            k: {n.name: a.get(k, 0) - b.get(k, 0) for n, b, a in zip(nodes, before, after, strict=True)}
            for k in STATS
        }
        for node, a in zip(nodes, after, strict=True):
            for k in STATS:
                ctx.sample(node.name, f"conntrack_{k}", a.get(k, 0))
        lines_after = await asyncio.gather(*(_table_full_lines(n) for n in nodes))
        ctx.finding("count_peak", peaks)
        ctx.finding("max", _one_or_each(await _limits(nodes)))
        for k in ("drop", "invalid"):
            ctx.finding(k, grown[k])
        logged = {
            n.name: a - b
            for n, b, a in zip(nodes, lines_before, lines_after, strict=True)
            if a is not None and b is not None
        }
        if any(logged.values()):
            ctx.finding("kernel_table_full_lines", logged)
        return "; ".join(
            f"{n}: peak {peaks[n]}, drop +{grown['drop'][n]}, invalid +{grown['invalid'][n]}" for n in peaks
        )


@attrs.frozen
class AssertTableFull(_OnNodes):
    """Within ``within`` seconds, a node's conntrack count reaches ``nf_conntrack_max`` and the
    kernel drops new flows (``conntrack -S`` ``drop`` grows). ``expect=False`` asserts the
    opposite over the whole window; ``expect=None`` only records the finding ``table_full``.
    """

    kind = "assert-table-full"
    requires = frozenset({"conntrack", "sysctl"})

    within: float = attrs.field(default=10.0, validator=positive)
    expect: bool | None = True
    nodes: tuple[str, ...] | None = attrs.field(default=None, converter=node_names)

    def default_name(self) -> str:
        return "assert table full" if self.expect is not False else "refute table full"

    async def run(self, ctx: StepContext) -> str:
        nodes = ctx.nodes(self.nodes)
        limits = await _limits(nodes)
        start = {n.name: (await n.conntrack_stats()).get("drop", 0) for n in nodes}
        seen: dict[str, object] = {}

        async def full() -> bool:
            for n in nodes:
                stats = await n.conntrack_stats()
                count, dropped = stats["entries"], stats.get("drop", 0) - start[n.name]
                if count >= limits[n.name] and dropped > 0:
                    seen.update(node=n.name, count=count, drop=dropped)
                    return True
            return False

        held = await poll(full, self.within, every=0.1)
        ctx.finding("table_full", held)
        limit = _one_or_each(limits)
        detail = (
            f"{seen['node']}: count {seen['count']} ≥ max {limits[str(seen['node'])]}, drop +{seen['drop']}"
            if held
            else f"count stayed below max {limit} or nothing dropped, for {self.within:g}s"
        )
        if self.expect is not None and held != self.expect:
            raise ExpectationFailed(detail)
        return detail


async def _limits(nodes: Sequence[NodeKernel]) -> dict[str, int]:
    """Each node's own ``nf_conntrack_max`` (nodes with kernels of their own may differ)."""
    values = await asyncio.gather(*(n.read_sysctl(MAX_KEY) for n in nodes))
    return {n.name: int(v) for n, v in zip(nodes, values, strict=True)}


def _one_or_each(per_node: dict[str, int]) -> int | dict[str, int]:
    """One number when every node has the same, else the number per node."""
    values = set(per_node.values())
    return values.pop() if len(values) == 1 else per_node


async def _table_full_lines(node: NodeKernel) -> int | None:
    """How many table-full lines the kernel has logged about the node (None: cannot tell)."""
    try:
        return await node.table_full_count()
    except (BackendError, OSError):
        return None
