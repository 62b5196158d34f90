"""kubernetes#74839 on the lab: does a forged out-of-window segment reset a real connection?

Upstream's e2e test (test/e2e/network/conntrack.go), on two nodes: the boom-server on node-2
behind a Service, and on node-1 a client that connects through the Service every 2 s. For each
phase (no fix, then each fix) the findings say whether a RST reached the boom-server (``rst``)
and whether its pod went CrashLoopBackOff (``crashloop``).

Kernels differ: which forged segments conntrack still marks INVALID changed around 6.1. The
packet's shape is a parameter, ``offset`` = forged seq - server's next seq. Measured on this
project's CI kernel (6.18, see docs/science.md): upstream's -100000 and -1000000 no longer reset
anything (conntrack lets "old" segments through and reverse-NATs them); +1000000 does. So the
default is +1000000, and the no-fix phase *measures* whether this kernel is affected: with
``require_reset=false`` it only reports.

    python -m connreset experiments/issue_74839.py --set offset=-100000 --set require_reset=false

On the lab it models the kube-proxy of the lab's ``proxy`` option: by default its iptables mode
before v1.15 (no INVALID-drop rule unless the fix adds it); ``--cluster-opt proxy=nftables`` (v1.33+,
no such rule: run it with ``--set fix=none`` or ``fix=be-liberal``), ``iptables-1.29`` and others,
see docs/lab.md. The run's header and journal say which.
"""

from typing import Literal

from connreset import (
    ApplyFix,
    AssertCrashLoop,
    AssertLogs,
    AssertRunning,
    Deploy,
    Experiment,
    Phase,
    RecordPods,
    workloads,
)

#: kubelet's back-off (10 s doubling) scaled by 0.1, so a crash loop shows within seconds.
cluster_options = {"lab": {"time_scale": 0.1}}

FixChoice = Literal["none", "be-liberal", "drop-invalid", "all"]


def phase(fix: str, offset: int, every: float, window: float, require_reset: bool) -> Phase:
    steps = [ApplyFix(fix)] if fix != "none" else []
    steps += [
        Deploy("boom-server", workloads.boom_server(offset=offset), node="node-2", port=9000),
        AssertRunning("boom-server", within=10),
        Deploy("boom-client", workloads.nc_loop("boom-server", every=every), node="node-1"),
        AssertLogs("boom-server", pattern="boom packet injected", within=window, record="injected"),
    ]
    if fix == "none":
        expect = True if require_reset else None
        steps += [
            AssertLogs("boom-server", pattern="RST received", within=window, expect=expect, record="rst"),
            AssertCrashLoop("boom-server", within=window, expect=expect, record="crashloop"),
        ]
        words = "a RST reaches the boom-server; it goes CrashLoopBackOff"
    else:
        steps += [
            AssertLogs("boom-server", pattern="RST received", within=window, expect=False, record="rst"),
            AssertCrashLoop("boom-server", within=1, expect=False, record="crashloop"),
        ]
        words = "no RST; the boom-server stays Running"
    steps.append(RecordPods("boom-server"))
    return Phase("no-fix" if fix == "none" else f"fix-{fix}", steps, expect=words, restore=True)


def experiment(
    *,
    offset: int = 1_000_000,
    fix: FixChoice = "all",
    every: float = 2.0,
    window: float = 10.0,
    require_reset: bool = True,
) -> Experiment:
    fixes = ["none", "be-liberal", "drop-invalid"] if fix == "all" else [fix]
    return Experiment(
        "issue-74839",
        [phase(f, offset, every, window, require_reset) for f in fixes],
        description=__doc__ or "",
    )
