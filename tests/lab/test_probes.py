"""kubelet's liveness probes in the lab, on the real kernel: sent from the node's namespace, they
pass through its conntrack table. Needs root."""

from __future__ import annotations

import pytest

from connreset import (
    AssertCrashLoop,
    AssertLogs,
    AssertRunning,
    Deploy,
    Experiment,
    Observe,
    Phase,
    RecordPods,
    SetSysctl,
    run,
    workloads,
)
from connreset.lab import testbed as lab
from connreset.testbed.probes import Liveness

pytestmark = pytest.mark.root

K = 40  # nf_conntrack_max while the table is full


@pytest.mark.parametrize("probe", [Liveness.http(80, "/", period=2), Liveness.tcp(80, period=2)])
async def test_a_probe_passes_with_room_and_fails_through_a_full_table_into_crashloop(
    probe: Liveness,
) -> None:
    """With room in node-2's table the probe passes and the pod stays Running; once held
    connections fill the table, the probe's SYN is dropped, the probe times out, and after
    failureThreshold failures the pod is restarted into CrashLoopBackOff."""
    web = Deploy("web", workloads.http_server(size=100), node="node-2", port=80, liveness=probe)
    exp = Experiment(
        "probes",
        [
            Phase(
                "room",
                web
                >> AssertRunning("web", within=5)
                >> (
                    AssertCrashLoop("web", within=1.5, expect=False, record="crashloop")
                    | AssertLogs("web", pattern="Liveness probe failed", within=1.5, expect=False)
                    | Observe(1.5, nodes=["node-2"])
                )
                >> RecordPods("web", record="web"),
            ),
            Phase(
                "full",
                SetSysctl("nf_conntrack_max", K)
                >> Deploy(
                    "client", workloads.simple_app_client("web", connections=2 * K, hold=60), node="node-1"
                )
                >> (
                    AssertCrashLoop("web", within=8, record="crashloop")
                    | AssertLogs("web", pattern="Liveness probe failed: .*timeout", within=8)
                    | Observe(3, nodes=["node-2"])
                )
                >> RecordPods("web", record="web"),
            ),
        ],
    )
    result = await run(exp, lab(time_scale=0.1))
    assert result.passed, [s for s in result.steps if s.status != "ok"]
    room, full = result.findings["room"], result.findings["full"]
    assert room["crashloop"] is False
    assert room["web"] == "Running, restarts 0"
    assert room["drop"] == {"node-2": 0}
    assert full["crashloop"] is True
    assert full["count_peak"] == {"node-2": K}
    assert full["drop"]["node-2"] > 0  # type: ignore[index]
    assert "restarts 0" not in str(full["web"])
