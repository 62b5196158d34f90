"""Does my kernel still need the fix for #74839? Which forged-packet offsets still reset a connection.

Each trial is upstream's e2e test on the lab (see issue_74839.py): the boom-server on node-2
forges, for each connection the client makes through its Service, a PSH|ACK whose sequence
number lies ``offset`` past the server's next one. Conntrack marks the segment INVALID when it
is out of the window it tracks; kube-proxy's reverse NAT then skips it, the client answers the
pod's own address with a RST, and the RST resets the real connection. The property: no RST
reached the boom-server. It holds for small offsets (inside what conntrack accepts) and stops
holding beyond some offset: the search finds that offset, without a fix and with each fix (with
a fix it should hold everywhere).

    python -m connreset sweep experiments/sweep_boom_offset.py --out results/boom-offset
"""

from __future__ import annotations

from collections.abc import Mapping

from connreset import (
    ApplyFix,
    AssertLogs,
    AssertRunning,
    Deploy,
    Experiment,
    RunResult,
    workloads,
)
from connreset.sweep import Sweep

cluster_options = {"lab": {"time_scale": 0.1}}


def experiment(*, offset: int = 0, fix: str = "none", window: float = 3.0) -> Experiment:
    """One trial: inject at ``offset``; did a RST come back within ``window`` seconds?"""
    steps = [ApplyFix(fix)] if fix != "none" else []
    steps += [
        Deploy("boom-server", workloads.boom_server(offset=offset), node="node-2", port=9000),
        AssertRunning("boom-server", within=10),
        Deploy("boom-client", workloads.nc_loop("boom-server", every=0.5), node="node-1"),
        AssertLogs("boom-server", pattern="boom packet injected", within=10, record="injected"),
        AssertLogs("boom-server", pattern="RST received", within=window, expect=None, record="rst"),
    ]
    return Experiment.single("boom-offset-trial", steps)


def no_reset(result: RunResult) -> bool:
    found = result.findings["main"]
    if found.get("injected") is not True:
        raise ValueError(f"no packet was injected in run {result.run_id}: the trial says nothing")
    return found.get("rst") is False


def recommend(
    workload: Mapping[str, object], last_failing: int | None, first_holding: int | None
) -> dict[str, object]:
    fix = str(workload["fix"])
    if last_failing is None:
        verdict = (
            f"no offset up to +{first_holding:,} reset a connection" if first_holding is not None else "?"
        )
        needs = fix != "none" or first_holding is None
        line = f"with {fix}: {verdict}" + (
            ": the fix holds" if fix != "none" else ": this kernel is not affected"
        )
        return {"fix": fix, "resets_from": None, "needs_fix": not needs, "line": line}
    return {
        "fix": fix,
        "resets_from": last_failing,
        "harmless_up_to": first_holding,
        "needs_fix": fix == "none",
        "line": f"with {fix}: segments up to +{first_holding:,} pass, from +{last_failing:,} on they reset "
        "the connection"
        + (": this kernel still needs a fix for #74839" if fix == "none" else ": the fix FAILS"),
    }


sweep = Sweep(
    name="boom-offset",
    experiment=experiment,
    vary="offset",
    space=range(0, 262_144 + 1, 4096),
    holds=no_reset,
    holds_when="below",
    workloads=[{"fix": "none"}, {"fix": "be-liberal"}, {"fix": "drop-invalid"}],
    recommend=recommend,
    description=__doc__ or "",
)
