"""What the entries/buckets ratio costs: how few hash buckets a full-ish table can live with.

Each trial holds a node's table at a fill level F (UDP flows, one datagram each, kept by a long UDP
timeout), well below ``nf_conntrack_max``, while client pods make new connections through a
Service as fast as they can. It measures the new-connection rate, the connect latency and
``conntrack -S`` in interleaved blocks, ``nf_conntrack_buckets`` at F (ratio 1, today's default
of max = buckets: the baseline, A) and at F / ``ratio`` (B) in turn, A/B/A/B/.../A, so that
both sides see the same machine even while its load changes. Past some ratio the hash chains
grow too long: the kernel refuses inserts into them (``chaintoolong``) and new flows are dropped
although the count is far below the max.

The property: at F / ratio no insert was refused for a chain too long (``chaintoolong`` did not
grow in a B block), no more inserts failed or were dropped than at ratio 1 (``insert_failed``,
``drop``: races can fail an insert at any ratio), and the rate stayed within 10 % of ratio 1's,
judged on the paired blocks (:func:`connreset.sweep.verdict.paired`): a trial whose pairs are too
noisy for a 10 % limit, or straddle it, is inconclusive. The search finds the largest safe ratio.

    python -m connreset sweep experiments/sweep_hash_ratio.py --out results/hash-ratio
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Mapping

import attrs

from connreset import (
    AssertLogs,
    Call,
    Deploy,
    Experiment,
    FlushConntrack,
    RunResult,
    SetSysctl,
    StepContext,
    workloads,
)
from connreset.sweep import Sweep
from connreset.sweep.verdict import Verdict, combine, paired

cluster_options = {"lab": {"time_scale": 0.1}}
COUNTERS = ("chaintoolong", "insert_failed", "drop")
LIMIT = 0.10  # the rate may drop by this much at the ratio


def _new_flows(nat: str) -> int:
    """Packets counted by kube-proxy's KUBE-SERVICES jumps: a flow's first packet only."""
    return sum(int(line[1:].split(":", 1)[0]) for line in nat.splitlines() if " -A KUBE-SERVICES " in line)


def measure(label: str, window: float) -> Call:
    """One window on node-1: new connections/s through the Service, connect latency, counters."""

    async def window_(ctx: StepContext) -> str:
        (node,) = ctx.nodes(["node-1"])
        cluster = ctx.cluster
        (probe,) = await cluster.pods("probe")
        vip = cluster.service_addresses()["nginx"]  # type: ignore[attr-defined]
        before = await node.conntrack_stats()
        flows0 = _new_flows((await node.exec(["iptables-save", "-c", "-t", "nat"])).stdout)
        t0 = time.monotonic()
        latencies = []
        while time.monotonic() - t0 < window:  # the window itself is what is measured
            out = await cluster.exec_in_pod(  # type: ignore[attr-defined]
                probe.name,
                ["curl", "-sS", "-o", "/dev/null", "-m", "2", "-w", "%{time_connect}", f"http://{vip}/"],
            )
            if out.ok:
                latencies.append(float(out.stdout) * 1000)
            await asyncio.sleep(0.05)
        flows1 = _new_flows((await node.exec(["iptables-save", "-c", "-t", "nat"])).stdout)
        seconds = time.monotonic() - t0
        after = await node.conntrack_stats()
        rate = (flows1 - flows0) / seconds
        ctx.finding(f"rate_{label}", round(rate))
        ctx.finding(f"connect_ms_{label}", round(statistics.median(latencies), 3) if latencies else None)
        ctx.finding(f"count_{label}", after["entries"])
        for k in COUNTERS:
            ctx.finding(f"{k}_{label}", after.get(k, 0) - before.get(k, 0))
        return f"{label}: {rate:,.0f} new conn/s, count {after['entries']}"

    window_.__name__ = f"measure {label}"
    return Call(window_)


def experiment(*, ratio: int = 1, fill: int = 65_536, window: float = 6.0, blocks: int = 8) -> Experiment:
    """One trial: ``blocks`` pairs of blocks, each ``window / blocks`` seconds, at ratio 1 (A) and
    at ``ratio`` (B) in turn, and a last A block."""
    buckets = max(fill // ratio, 1)
    block = window / blocks
    steps = (
        FlushConntrack()
        >> SetSysctl("nf_conntrack_udp_timeout", 600)
        >> SetSysctl("nf_conntrack_tcp_timeout_time_wait", 1)
        >> SetSysctl("nf_conntrack_max", max(4 * fill, 262_144))
        >> SetSysctl("nf_conntrack_buckets", fill)
        >> Deploy("nginx", workloads.http_server(size=64), node="node-2", port=80)
        >> Deploy("probe", workloads.command(["sleep", "infinity"]), node="node-1")
        >> Deploy("filler", workloads.udp_fill("node-2", count=fill), node="node-1")
        >> AssertLogs("filler", pattern="^filled", within=30)
        >> Deploy("clients", workloads.simple_app_client("nginx", connections=16), replicas=2, node="node-1")
    )
    for i in range(blocks):
        steps = (
            steps
            >> measure(f"a{i}", block)
            >> SetSysctl("nf_conntrack_buckets", buckets, name=f"shrink buckets {i + 1}")
            >> measure(f"b{i}", block)
            >> SetSysctl("nf_conntrack_buckets", fill, name=f"buckets back {i + 1}")
        )
    steps = steps >> measure(f"a{blocks}", block)
    return Experiment.single("hash-ratio-trial", steps)


def _blocks(found: Mapping[str, object], key: str, side: str) -> list[float]:
    values = []
    i = 0
    while f"{key}_{side}{i}" in found:
        value = found[f"{key}_{side}{i}"]
        values.append(float(str(value)) if value is not None else float("nan"))
        i += 1
    return values


def safe(result: RunResult) -> Verdict:
    f = result.findings["main"]
    chains = sum(_blocks(f, "chaintoolong", "b"))
    if chains > 0:  # a chain too long: the ratio's own failure, whatever the machine did
        return Verdict(False, why=f"{chains:.0f} insert(s) refused for a chain too long")
    failed_b = sum(sum(_blocks(f, k, "b")) for k in ("insert_failed", "drop"))
    failed_a = sum(sum(_blocks(f, k, "a")) for k in ("insert_failed", "drop"))
    if failed_b > 10 * failed_a + 10:
        inserts = Verdict(False, why=f"{failed_b:.0f} failed inserts at the ratio, {failed_a:.0f} at ratio 1")
    elif failed_b > failed_a:
        inserts = Verdict(None, why=f"{failed_b:.0f} failed inserts at the ratio, {failed_a:.0f} at ratio 1")
    else:
        inserts = Verdict(True)
    rate = paired(_blocks(f, "rate", "a"), _blocks(f, "rate", "b"), limit=LIMIT, name="rate")
    verdict = combine(rate, inserts)
    # the connect time is measured the same way and reported beside the verdict, not judged: it
    # follows the rate (and curl's milliseconds from inside a pod are noisier than a counter)
    a, b = _blocks(f, "connect_ms", "a"), _blocks(f, "connect_ms", "b")
    if len(b) >= 2 and all(x == x and x > 0 for x in a + b):  # no NaN, no empty block
        connect = paired(a, b, limit=0.5, worse="higher", name="connect time")
        verdict = attrs.evolve(verdict, why=f"{verdict.why or rate.why}; {connect.why.split(':')[0]}")
    return verdict


def rate_shrunk(result: RunResult) -> float:
    """The median of the rates measured at the ratio (B blocks)."""
    return statistics.median(_blocks(result.findings["main"], "rate", "b"))


def recommend(
    workload: Mapping[str, object], last_failing: int | None, first_holding: int | None
) -> dict[str, object]:
    fill = int(str(workload["fill"]))
    if first_holding is None:
        return {"max_ratio": None, "line": f"at {fill:,} entries: even ratio 1 lost inserts or rate"}
    return {
        "max_ratio": first_holding,
        "fill": fill,
        "line": f"at {fill:,} entries: buckets ≥ entries / {first_holding} (ratio ≤ {first_holding}; "
        f"ratio {last_failing} lost inserts or > 10 % of the rate)"
        if last_failing
        else f"at {fill:,} entries: every ratio up to {first_holding} was safe",
    }


sweep = Sweep(
    name="hash-ratio",
    experiment=experiment,
    vary="ratio",
    space=range(1, 33),
    holds=safe,
    holds_when="below",
    metric=rate_shrunk,
    metric_name="new conn/s at the ratio",
    workloads=[{"fill": 65_536}, {"fill": 131_072}],
    recommend=recommend,
    description=__doc__ or "",
)
