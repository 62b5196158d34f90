"""Reading a node's facts, strictly read-only: file reads and commands that only print.

Every command the doctor runs on a node is listed in :data:`READ_COMMANDS`, and every file it
reads in :data:`READ_FILES`; nothing here writes a sysctl, adds a rule or makes a file. A test
holds the lists to that (``tests/doctor/test_facts.py``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from connreset.errors import BackendError
from connreset.kernel import conntrack
from connreset.kernel.node import NodeKernel
from connreset.kernel.sysctl import proc_path

SYSCTLS = (
    "net.netfilter.nf_conntrack_tcp_be_liberal",
    "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_conntrack_buckets",
    "net.netfilter.nf_conntrack_tcp_timeout_close_wait",
    "net.netfilter.nf_conntrack_tcp_timeout_established",
)
#: The iptables dumps tried in turn, until one shows kube-proxy's chains (kube-proxy may use
#: either backend; ``iptables-save`` is the node's default one).
IPTABLES_SAVES = (("iptables-save",), ("iptables-nft-save",), ("iptables-legacy-save",))
NFT_KUBE_PROXY = ("nft", "list", "table", "ip", "kube-proxy")
IPVS_LINK = ("ip", "-o", "link", "show", "dev", "kube-ipvs0")
NPROC = ("nproc",)
HAS_CONNTRACK = ("conntrack", "--version")
#: New flows over the window: conntrack's NEW events, counted on the node (the kernel's ``insert``
#: counter no longer counts them). The window is passed as ``$1``, never written into the script.
COUNT_NEW = ("sh", "-c", 'timeout "$1" conntrack -E -e NEW 2>/dev/null | wc -l', "sh")
DMESG = ("dmesg", "--kernel", "--notime")
DMESG_STAMPED = ("dmesg", "--kernel")  # [seconds since boot]: the standing lab, lines since its netns
#: Every argv the doctor may run on a node.
READ_COMMANDS: tuple[tuple[str, ...], ...] = (
    *IPTABLES_SAVES,
    NFT_KUBE_PROXY,
    IPVS_LINK,
    NPROC,
    HAS_CONNTRACK,
    (*COUNT_NEW, "SECONDS"),
    DMESG,
    DMESG_STAMPED,
    ("readlink", "/proc/self/ns/net"),
)
#: Every file the doctor reads on a node.
READ_FILES = (*(proc_path(k) for k in SYSCTLS), conntrack.STAT_PATH, "/proc/sys/kernel/osrelease")
#: The ``conntrack -S`` counters read as rates over the window (where the kernel has them).
COUNTERS = ("drop", "early_drop", "insert_failed", "invalid", "chaintoolong")


def _ints(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(value)


@attrs.frozen
class NodeFacts:
    """What was read on one node; None where it could not be read (``errors`` says why)."""

    node: str
    kernel: str | None = None
    sysctls: Mapping[str, str | None] = attrs.field(factory=dict)
    iptables: str | None = None
    nft_kube_proxy: bool | None = None
    ipvs: bool | None = None
    cpus: int | None = None
    elapsed: float = 0.0
    stats_before: Mapping[str, int] | None = None
    stats_after: Mapping[str, int] | None = None
    counts: tuple[int, ...] = attrs.field(default=(), converter=_ints)
    new_flows: int | None = None
    table_full_before: int | None = None
    table_full_after: int | None = None
    errors: Mapping[str, str] = attrs.field(factory=dict)

    def sysctl(self, key: str) -> int | None:
        value = self.sysctls.get("net.netfilter." + key)
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None

    def rate(self, counter: str) -> float | None:
        """The counter's increase per second over the window (None: not read, or not in this kernel)."""
        before, after = self.stats_before, self.stats_after
        if before is None or after is None or counter not in before or counter not in after:
            return None
        if self.elapsed <= 0:
            return None
        return max(after[counter] - before[counter], 0) / self.elapsed

    def delta(self, counter: str) -> int | None:
        before, after = self.stats_before, self.stats_after
        if before is None or after is None or counter not in before or counter not in after:
            return None
        return max(after[counter] - before[counter], 0)

    @property
    def new_per_second(self) -> float | None:
        """New flows per second over the window (conntrack's NEW events; None: not counted)."""
        if self.new_flows is None or self.elapsed <= 0:
            return None
        return self.new_flows / self.elapsed

    @property
    def peak(self) -> int | None:
        return max(self.counts) if self.counts else None

    @property
    def count_now(self) -> int | None:
        return self.counts[-1] if self.counts else None


async def _try(errors: dict[str, str], what: str, read: Callable[[], Any]) -> Any:
    try:
        return await read()
    except (BackendError, OSError, ValueError, TimeoutError) as exc:
        errors[what] = str(exc) or type(exc).__name__
        return None


async def _iptables(node: NodeKernel, errors: dict[str, str]) -> str | None:
    found: str | None = None
    for argv in IPTABLES_SAVES:
        result = await _try(errors, argv[0], lambda a=argv: node.exec(a))  # type: ignore[misc]
        if result is None or not result.ok:
            continue
        errors.pop(argv[0], None)
        if found is None or "KUBE-" in result.stdout:
            found = result.stdout
        if "KUBE-" in result.stdout:
            break
    if found is None:
        errors["iptables"] = "no iptables-save on the node could run"
    return found


async def _ok(node: NodeKernel, argv: Sequence[str], errors: dict[str, str]) -> bool | None:
    result = await _try(errors, argv[0], lambda: node.exec(argv))
    return None if result is None else result.ok


async def _count_new(node: NodeKernel, window: float, errors: dict[str, str]) -> int | None:
    """How many NEW conntrack events the node saw in ``window`` seconds (None: no conntrack tool)."""
    found = await _try(errors, "conntrack", lambda: node.exec(HAS_CONNTRACK))
    if found is None or not found.ok:
        errors.setdefault("conntrack", "the conntrack tool is not on the node: new flows/s not counted")
        return None
    seconds = f"{max(window, 1):.0f}"
    result = await _try(errors, "conntrack -E", lambda: node.exec([*COUNT_NEW, seconds], timeout=window + 30))
    if result is None or not result.ok or not result.stdout.strip().isdigit():
        return None
    return int(result.stdout.strip())


async def gather(
    node: NodeKernel,
    window: float,
    *,
    every: float = 1.0,
    on_sample: Callable[[int], None] | None = None,
) -> NodeFacts:
    """Read one node's facts: the settings once, and the conntrack counters and count over
    ``window`` seconds (the count every ``every`` seconds, for its peak)."""
    errors: dict[str, str] = {}
    kernel = await _try(errors, "kernel", node.kernel)
    sysctls = {k: await _try(errors, k, lambda k=k: node.read_sysctl(k)) for k in SYSCTLS}  # type: ignore[misc]
    iptables = await _iptables(node, errors)
    nft = await _ok(node, NFT_KUBE_PROXY, errors)
    ipvs = await _ok(node, IPVS_LINK, errors)
    nproc = await _try(errors, "nproc", lambda: node.exec(NPROC))
    cpus = (
        int(nproc.stdout.strip())
        if nproc is not None and nproc.ok and nproc.stdout.strip().isdigit()
        else None
    )
    full_before = await _try(errors, "table full lines", node.table_full_count)
    t0 = time.monotonic()
    counting = asyncio.ensure_future(_count_new(node, window, errors))
    before = await _try(errors, "conntrack -S", node.conntrack_stats)
    counts: list[int] = []
    if before is not None:
        counts.append(before["entries"])
    step = max(min(every, window / 10), 0.05)
    end = t0 + window
    while (left := end - time.monotonic()) > 0:
        await asyncio.sleep(min(step, left))
        count = await _try(errors, "count", node.conntrack_count)
        if count is not None:
            counts.append(count)
            if on_sample is not None:
                on_sample(count)
    after = await _try(errors, "conntrack -S", node.conntrack_stats)
    elapsed = time.monotonic() - t0
    try:
        new_flows = await counting
    finally:
        counting.cancel()
    if after is not None:
        counts.append(after["entries"])
    full_after = await _try(errors, "table full lines", node.table_full_count)
    return NodeFacts(
        node.name,
        kernel,
        sysctls,
        iptables,
        nft,
        ipvs,
        cpus,
        elapsed if math.isfinite(elapsed) else 0.0,
        before,
        after,
        counts,
        new_flows,
        full_before,
        full_after,
        errors,
    )
