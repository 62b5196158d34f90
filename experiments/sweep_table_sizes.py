"""The smallest safe ``nf_conntrack_max`` for a workload: the blog's open question, measured.

Each trial is the blog's simple app on the lab: an nginx-like server on node-2 behind a Service,
and on node-1 ``pods`` client pods, each making ``rate`` new connections a second and holding
``held`` connections open. The property: no packet was dropped for a full table, on any node,
once the table reached its steady state. The search varies ``nf_conntrack_max``.

A steady state, not a warm-up: each new connection leaves a TIME_WAIT entry that conntrack keeps
for ``nf_conntrack_tcp_timeout_time_wait`` (120 s by default). That timeout is per network
namespace, so trials shorten it in the lab's nodes to ``time_wait`` seconds, let the clients' first
burst and the first TIME_WAIT entries pass (``warmup``), then count drops; the entries then stay
at about ``pods × (rate × time_wait + held)``. The recommendation scales the boundary found back
to the kernel's default timeout: each connection a second keeps ``120 − time_wait`` more entries,
and up to 60 more, because the kernel counts an expired entry against the max until its garbage
collector reaps it, and at the default timeouts the collector scans every 60 s at most (measured
here: the count saws between 11,700 and 16,900 for 100 connections/s, reaped every 61 s). A
confirmation run at the recommended size, with the default timeout and for 240 s, must see no
drop; one at 80 % of it must.

    python -m connreset sweep experiments/sweep_table_sizes.py --out results/table-sizes
"""

from __future__ import annotations

from collections.abc import Mapping

from connreset import Deploy, Experiment, FlushConntrack, Observe, RunResult, SetSysctl, Wait, workloads
from connreset.sweep import Confirmation, Sweep

cluster_options = {"lab": {"time_scale": 0.1}}
DEFAULT_TIME_WAIT = 120
#: The kernel counts an expired entry against the max until its garbage collector reaps it, and at
#: the default timeouts it scans every 60 s at most (GC_SCAN_INTERVAL_MAX; measured here: 61 s).
GC_LAG = 60


def experiment(
    *,
    max_: int = 131_072,
    pods: int = 10,
    rate: float = 10.0,
    held: int = 0,
    time_wait: int = 5,
    warmup: float = -1.0,
    window: float = 0.0,
) -> Experiment:
    """One trial: the workload against a table of ``max_`` entries. Drops are counted over
    ``window`` seconds (default: the TIME_WAIT timeout) after a ``warmup`` (default: the timeout
    and 2 s), so that what is measured is the steady state: the clients' first burst is over and
    the first TIME_WAIT entries have expired."""
    steps = [
        FlushConntrack(),
        SetSysctl("nf_conntrack_tcp_timeout_time_wait", time_wait),
        SetSysctl("nf_conntrack_max", max_),
        Deploy("nginx", workloads.http_server(size=64), node="node-2", port=80),
    ]
    if held:
        holders = workloads.simple_app_client("nginx", connections=held, hold=3600)
        steps.append(Deploy("holders", holders, replicas=pods, node="node-1"))
    if rate:
        churn = workloads.simple_app_client("nginx", connections=4, rate=rate)
        steps.append(Deploy("simple-app", churn, replicas=pods, node="node-1"))
    warmup = time_wait + 2 if warmup < 0 else warmup
    if warmup:
        steps.append(Wait(seconds=warmup, name="warm up"))
    steps.append(Observe(window or time_wait, every=0.2))
    return Experiment.single("table-size-trial", steps)


def no_drop(result: RunResult) -> bool:
    found = result.findings["main"]
    drops = found["drop"]
    return isinstance(drops, dict) and sum(drops.values()) == 0


def peak(result: RunResult) -> float:
    counts = result.findings["main"]["count_peak"]
    return float(max(counts.values())) if isinstance(counts, dict) else 0.0


def recommend(
    workload: Mapping[str, object], last_failing: int | None, first_holding: int | None
) -> dict[str, object]:
    if first_holding is None:
        return {"nf_conntrack_max": None, "line": f"{_words(workload)}: no size in the space was enough"}
    pods, rate = int(str(workload["pods"])), float(str(workload["rate"]))
    time_wait = int(str(workload.get("time_wait", 5)))
    size = int(first_holding + pods * rate * (DEFAULT_TIME_WAIT + GC_LAG - time_wait))
    return {
        "nf_conntrack_max": size,
        "measured_at_time_wait": {"time_wait": time_wait, "first_holding": first_holding},
        "workload": {"pods": pods, "rate": rate, "held": int(str(workload.get("held", 0)))},
        "line": f"for {_words(workload)}: nf_conntrack_max ≥ {size} "
        f"(found {first_holding} at TIME_WAIT {time_wait} s; + {pods} pods × {rate:g}/s × "
        f"{DEFAULT_TIME_WAIT + GC_LAG - time_wait} s: the default {DEFAULT_TIME_WAIT} s of TIME_WAIT "
        f"and up to {GC_LAG} s before the kernel reaps an expired entry)",
    }


def confirm(workload: Mapping[str, object], recommendation: Mapping[str, object]) -> list[Confirmation]:
    size = recommendation.get("nf_conntrack_max")
    if not isinstance(size, int) or workload != WORKLOADS[0]:
        return []  # one workload is confirmed: each run lasts longer than the default TIME_WAIT
    # from the start, for longer than TIME_WAIT and two of the collector's passes: the count climbs
    # for 120 s, then saws between what TIME_WAIT keeps and that plus a scan interval's worth
    longer = {"time_wait": DEFAULT_TIME_WAIT, "warmup": 0, "window": 2 * DEFAULT_TIME_WAIT}
    return [
        Confirmation(
            f"{_words(workload)} at {size} for {longer['window']} s", {**longer, "max_": size}, True
        ),
        Confirmation(
            f"{_words(workload)} at 80% ({int(size * 0.8)}) for {longer['window']} s",
            {**longer, "max_": int(size * 0.8)},
            False,
        ),
    ]


def _words(workload: Mapping[str, object]) -> str:
    return f"{workload['pods']} pods making {float(str(workload['rate'])):g} new connections/s each" + (
        f", holding {workload['held']}" if workload.get("held") else ""
    )


WORKLOADS: list[dict[str, object]] = [
    {"pods": 10, "rate": 10, "held": 0},
    {"pods": 50, "rate": 10, "held": 0},
    {"pods": 10, "rate": 10, "held": 50},
]

sweep = Sweep(
    name="table-sizes",
    experiment=experiment,
    vary="max_",
    space=range(256, 256 + 128 * 64, 128),
    holds=no_drop,
    holds_when="above",
    metric=peak,
    metric_name="peak count",
    workloads=WORKLOADS,
    recommend=recommend,
    confirm=confirm,
    description=__doc__ or "",
)
