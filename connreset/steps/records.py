"""Steps that record what a node's kernel holds, without changing it: a sysctl's value, and what
conntrack entries cost in memory."""

from __future__ import annotations

import asyncio

import attrs

from connreset.errors import BackendError, ExpectationFailed
from connreset.guest.timing import scaled
from connreset.kernel import sysctl
from connreset.steps.base import Step, StepContext, node_names, positive

PAGE = 4096
HEAD_BYTES = 8  # one hash bucket: an hlist_nulls_head, a pointer
PER = 100_000


@attrs.frozen
class RecordSysctl(Step):
    """Record a sysctl's value on nodes (all by default) as a finding: one value when every node
    has the same, else the value per node. ``record`` defaults to the key's last part."""

    kind = "record-sysctl"
    requires = frozenset({"sysctl"})

    key: str
    record: str | None = None
    nodes: tuple[str, ...] | None = attrs.field(default=None, converter=node_names)

    def __attrs_post_init__(self) -> None:
        full, _ = sysctl.check(self.key, "0")
        object.__setattr__(self, "key", full)

    def default_name(self) -> str:
        return f"record {self.key.rsplit('.', 1)[-1]}"

    async def run(self, ctx: StepContext) -> str:
        nodes = ctx.nodes(self.nodes)
        values = await asyncio.gather(*(n.read_sysctl(self.key) for n in nodes))
        per_node = {n.name: _number(v) for n, v in zip(nodes, values, strict=True)}
        distinct = set(map(str, per_node.values()))
        value: object = next(iter(per_node.values())) if len(distinct) == 1 else per_node
        ctx.finding(self.record or self.key.rsplit(".", 1)[-1], value)
        return f"{self.key} = " + ", ".join(f"{k} {v}" for k, v in per_node.items())


def _number(value: str) -> int | str:
    try:
        return int(value)
    except ValueError:
        return value


def slab_cost(slabinfo: str, cache: str = "nf_conntrack") -> tuple[int, int, float]:
    """(object size, active objects, bytes per object with the slab's own packing) of a cache in
    ``/proc/slabinfo``'s text.

    Raises:
        BackendError: the cache is not listed (merged into another, or conntrack not loaded).
    """
    for line in slabinfo.splitlines():
        fields = line.split()
        if fields and fields[0] == cache and len(fields) >= 6:
            active, _, objsize, per_slab, pages = (int(f) for f in fields[1:6])
            return objsize, active, pages * PAGE / per_slab
    raise BackendError(f"/proc/slabinfo lists no {cache} cache")


@attrs.frozen
class RecordConntrackMemory(Step):
    """Record what conntrack entries cost, from the kernel's own ``/proc/slabinfo`` (read on the
    first node; the slab is the kernel's, shared by every namespace).

    Findings: ``entry_bytes`` (the ``nf_conntrack`` slab's bytes per entry, as packed in its
    pages), ``entries_in_slab`` (entries allocated, every namespace's), ``mib_per_100k_entries``
    (entries only), and ``mib_per_100k_with_hash``: that plus the hash table's heads at the
    ratio of the current ``nf_conntrack_buckets`` to ``nf_conntrack_max``.
    """

    kind = "record-conntrack-memory"
    requires = frozenset({"exec", "sysctl"})

    def default_name(self) -> str:
        return "record conntrack memory"

    async def run(self, ctx: StepContext) -> str:
        node = ctx.nodes()[0]
        result = await node.exec(["cat", "/proc/slabinfo"])
        if not result.ok:
            raise BackendError(f"{node.name}: cannot read /proc/slabinfo: {result.stderr.strip()[:200]}")
        objsize, active, per_entry = slab_cost(result.stdout)
        buckets = int(await node.read_sysctl("net.netfilter.nf_conntrack_buckets"))
        max_ = int(await node.read_sysctl("net.netfilter.nf_conntrack_max"))
        entries = per_entry * PER / 2**20
        with_hash = (per_entry + HEAD_BYTES * buckets / max(max_, 1)) * PER / 2**20
        ctx.finding("entry_bytes", round(per_entry, 1))
        ctx.finding("entries_in_slab", active)
        ctx.finding("mib_per_100k_entries", round(entries, 1))
        ctx.finding("mib_per_100k_with_hash", round(with_hash, 1))
        return (
            f"nf_conntrack slab: {objsize} B objects ({per_entry:g} B each as packed), {active} allocated; "
            f"{entries:.1f} MiB per {PER:,} entries, {with_hash:.1f} MiB with the hash heads "
            f"({buckets} buckets for max {max_})"
        )


@attrs.frozen
class AssertFillsToMax(Step):
    """Watch one node's conntrack count fill up: sampled every ``every`` seconds (into the
    journal, for the plot) until it has been at ``nf_conntrack_max`` for ``hold`` seconds, or
    ``within`` seconds pass. It must start below the max, reach it, and never go above it by more
    than ``slack`` (a fraction: 0.01 is 1 %). ``expect=None`` only records.

    Finding ``fill``: ``start``, ``max``, ``reached_after_s`` (None: never), ``peak``,
    ``min_after_max`` (the lowest count once the max was reached) and ``samples``.
    """

    kind = "assert-fills-to-max"
    requires = frozenset({"conntrack", "sysctl"})

    node: str
    within: float = attrs.field(default=20.0, validator=positive)
    hold: float = attrs.field(default=1.0, validator=positive)
    every: float = attrs.field(default=0.1, validator=positive)
    slack: float = 0.01
    expect: bool | None = True

    def default_name(self) -> str:
        return f"assert {self.node} count fills to max"

    async def run(self, ctx: StepContext) -> str:
        (node,) = ctx.nodes([self.node])
        limit = int(await node.read_sysctl("net.netfilter.nf_conntrack_max"))
        ctx.sample(node.name, "conntrack_max", limit)
        loop = asyncio.get_running_loop()
        start = loop.time()
        samples: list[tuple[float, int]] = []
        reached: float | None = None
        within = scaled(self.within)  # stretched in a slow guest, as every wait is (as written on the host)
        while True:
            count = await node.conntrack_count()
            now = loop.time() - start
            samples.append((now, count))
            ctx.sample(node.name, "conntrack_count", count)
            if reached is None and count >= limit:
                reached = now
            if now >= within or (reached is not None and now - reached >= self.hold):
                break
            await asyncio.sleep(self.every)
        first, peak = samples[0][1], max(c for _, c in samples)
        after = [c for t, c in samples if reached is not None and t >= reached]
        fill = {
            "start": first,
            "max": limit,
            "reached_after_s": None if reached is None else round(reached, 1),
            "peak": peak,
            "min_after_max": min(after) if after else None,
            "samples": len(samples),
        }
        ctx.finding("fill", fill)
        held = first < limit and reached is not None and peak <= limit * (1 + self.slack)
        detail = (
            f"{self.node}: {first} → max {limit} after {reached:.1f}s, then {min(after)}..{peak} "
            f"for {self.hold:g}s ({len(samples)} samples)"
            if reached is not None
            else f"{self.node}: {first} → {peak}, never reached max {limit} in {self.within:g}s"
        )
        if self.expect is not None and held != self.expect:
            raise ExpectationFailed(
                detail + (f"; above max + {self.slack:.0%}" if peak > limit * (1 + self.slack) else "")
            )
        return detail
