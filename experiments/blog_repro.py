"""The 2019 blog's reproduction of connection resets, with its numbers, on the lab.

1. baseline: the simple app (an nginx-like server on node-2; on node-1 a curl-like client making
   ``rate`` new connections a second per pod, like a curl loop) is scaled from 0 to 50
   replicas; the boom-server canary is Running; nothing is dropped. Then the canary's client
   starts, and the canary goes CrashLoopBackOff (``require_reset=false`` only
   records whether it does, for packet shapes this kernel is not affected by).
2. saturate: ``nf_conntrack_buckets``/``nf_conntrack_max`` = 300/1200. The count reaches the
   max, the kernel drops new flows, and the clients log curl errors.
3. deplete: 150/600, the same, harder.
4. fix: ``nf_conntrack_tcp_be_liberal=1``; the canary, deployed afresh, stays Running.

Where this kernel differs from the blog's account, the findings say so rather than assume:

- the canary's crash depends on the forged packet's shape (``offset``; see issue_74839.py);
- lowering the max evicts nothing: the count stays far above the new max while new flows are
  dropped, and the canary's own connections are dropped too (``canary_booms``), so the fix
  phase also gives the table kube-proxy's default size (max 131072, hashsize max/4);
- the kernel rounds ``nf_conntrack_buckets`` up to a page of hash heads (300 and 150 → 512);
  the findings record what it stored.

Both max and buckets are machine-wide: the lab records and restores them.
"""

from connreset import (
    ApplyFix,
    AssertCrashLoop,
    AssertLogs,
    AssertRunning,
    AssertTableFull,
    CountLogs,
    Delete,
    Deploy,
    Experiment,
    Observe,
    Phase,
    RecordPods,
    Scale,
    SetSysctl,
    workloads,
)

cluster_options = {"lab": {"time_scale": 0.1}}

CURL_ERRORS = r"^curl: \((7|28|56|52|18)\)"


def squeeze(name: str, buckets: int, max_: int, observe: float) -> Phase:
    """Shrink the table, then watch one window: the count, the drops, the clients' errors and the
    canary, all at once (``|``), then count what the window showed."""
    watch = (
        AssertTableFull(within=observe)
        | Observe(observe)
        | AssertLogs("simple-app", pattern=CURL_ERRORS, within=observe)
        | AssertCrashLoop("boom-server", within=observe, expect=None, record="canary_crashloop")
    )
    return Phase(
        name,
        SetSysctl("nf_conntrack_buckets", buckets)
        >> SetSysctl("nf_conntrack_max", max_)
        >> watch
        >> CountLogs("simple-app", CURL_ERRORS, record="curl_errors")
        >> CountLogs("boom-server", "boom packet injected", record="canary_booms")
        >> RecordPods("boom-server", record="canary"),
        expect=f"count reaches max {max_}; drops; curl errors",
    )


def experiment(
    *,
    replicas: int = 50,
    connections: int = 1,
    rate: float = 10.0,
    file_size: int = 16_384,
    offset: int = 1_000_000,
    observe: float = 10.0,
    fixed_max: int = 131_072,
    require_reset: bool = True,
) -> Experiment:
    clients = workloads.simple_app_client("nginx", connections=connections, rate=rate)
    canary = workloads.boom_server(offset=offset)
    baseline = Phase(
        "baseline",
        Deploy("nginx", workloads.http_server(size=file_size), node="node-2", port=80)
        >> Deploy("simple-app", clients, replicas=0, node="node-1")
        >> AssertRunning("nginx", within=10)
        >> Scale("simple-app", replicas)
        >> AssertRunning("simple-app", replicas=replicas, within=30)
        >> Deploy("boom-server", canary, node="node-2", port=9000)
        >> AssertRunning("boom-server", within=10)
        >> RecordPods("boom-server", record="canary")
        >> (
            # the table's baseline, while the canary's client starts and the canary falls
            (
                Observe(observe / 2)
                >> AssertTableFull(within=1, expect=False)
                >> CountLogs("simple-app", CURL_ERRORS, record="curl_errors")
            )
            | (
                Deploy("boom-client", workloads.nc_loop("boom-server"), node="node-1")
                >> AssertCrashLoop(
                    "boom-server",
                    within=observe,
                    expect=True if require_reset else None,
                    record="canary_crashloop",
                )
            )
        ),
        expect="50 clients Running, no drops; canary Running, then CrashLoopBackOff",
    )
    fix = Phase(
        "fix",
        ApplyFix("be-liberal")
        >> ApplyFix("bigger-table", max=fixed_max, buckets=fixed_max // 4)
        >> Delete("boom-server")
        >> Deploy("boom-server", canary, node="node-2", port=9000)
        >> AssertRunning("boom-server", within=10)
        >> AssertLogs("boom-server", pattern="boom packet injected", within=observe, record="injected")
        >> (
            AssertLogs("boom-server", pattern="RST received", within=observe, expect=False, record="rst")
            | AssertCrashLoop("boom-server", within=1, expect=False, record="canary_crashloop")
            | (Observe(observe / 2) >> AssertTableFull(within=1, expect=False))
        )
        >> RecordPods("boom-server", record="canary"),
        expect="be_liberal=1: canary Running, no RST",
    )
    return Experiment(
        "blog-repro",
        [
            baseline,
            squeeze("saturate", 300, 1200, observe),
            squeeze("deplete", 150, 600, observe),
            fix,
        ],
        description=__doc__ or "",
    )
