"""What the entries/buckets ratio costs: how few hash buckets a full-ish table can live with.

Each trial holds a node's table at a fill level F (UDP flows, one datagram each, kept by a long UDP
timeout), well below ``nf_conntrack_max``, while client pods make new connections through a
Service as fast as they can. It measures, with ``nf_conntrack_buckets`` at F (ratio 1, today's
default of max = buckets) and then at F / ``ratio``, the new-connection rate, the connect latency
and ``conntrack -S``. Past some ratio the hash chains grow too long: the kernel refuses inserts
into them (``chaintoolong``) and new flows are dropped although the count is far below the max.

The property: at F / ratio no insert failed (``chaintoolong``, ``insert_failed`` and ``drop`` did
not grow) and the rate stayed within 10 % of ratio 1's. The search finds the largest safe ratio.

    python -m connreset sweep experiments/sweep_hash_ratio.py --out results/hash-ratio
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Mapping

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

cluster_options = {"lab": {"time_scale": 0.1}}
COUNTERS = ("chaintoolong", "insert_failed", "drop")


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


def experiment(*, ratio: int = 1, fill: int = 65_536, window: float = 3.0) -> Experiment:
    buckets = max(fill // ratio, 1)
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
        >> measure("ratio_1", window)
        >> SetSysctl("nf_conntrack_buckets", buckets, name="shrink buckets")
        >> measure("shrunk", window)
    )
    return Experiment.single("hash-ratio-trial", steps)


def safe(result: RunResult) -> bool:
    f = result.findings["main"]
    failed = sum(int(str(f[f"{k}_shrunk"])) for k in COUNTERS)
    base, shrunk = float(str(f["rate_ratio_1"])), float(str(f["rate_shrunk"]))
    return failed == 0 and shrunk >= 0.9 * base


def rate_shrunk(result: RunResult) -> float:
    return float(str(result.findings["main"]["rate_shrunk"]))


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
