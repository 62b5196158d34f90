"""Does my kernel still need the fix for #74839? Which forged-packet offsets still reset a connection.

Each trial is upstream's e2e test on the lab (see issue_74839.py): the boom-server on node-2
forges, for each connection the client makes through its Service, a PSH|ACK whose sequence
number lies ``distance`` bytes ahead of the server's next one, or behind it (upstream's own shape
is 100000 behind). Conntrack marks the segment INVALID when it is out of the window it tracks;
kube-proxy's reverse NAT then skips it, the client answers the pod's own address with a RST, and
the RST resets the real connection. The property: no RST reached the boom-server. It holds close
to the window and stops holding beyond some distance: the search finds that distance on each side,
without a fix and with each fix (with a fix it should hold everywhere).

The sides differ by kernel: since 6.1 (6e250dcbff1d, "ignore overly delayed tcp packets")
conntrack ignores segments behind the window instead of marking them INVALID, so only the side
ahead still resets. Run it under several kernels, each in a guest:

    python -m connreset sweep experiments/sweep_boom_offset.py --kernel 5.10,6.1,host --out results/kernels
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

SIDES = {"ahead": 1, "behind": -1}


def experiment(
    *, distance: int = 0, side: str = "ahead", fix: str = "none", window: float = 3.0
) -> Experiment:
    """One trial: inject ``distance`` bytes ``side`` of the window; did a RST come back within
    ``window`` seconds?"""
    if side not in SIDES:
        raise ValueError(f"side must be one of {', '.join(SIDES)}, not {side!r}")
    if distance < 0:
        raise ValueError(f"distance must be 0 or more (the side gives the sign), not {distance}")
    steps = [ApplyFix(fix)] if fix != "none" else []
    steps += [
        Deploy(
            "boom-server",
            workloads.boom_server(offset=SIDES[side] * distance),
            node="node-2",
            port=9000,
        ),
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


def _signed(side: str, distance: int) -> str:
    return f"{'+' if side == 'ahead' else '−'}{distance:,}"


def recommend(
    workload: Mapping[str, object], last_failing: int | None, first_holding: int | None
) -> dict[str, object]:
    fix, side = str(workload["fix"]), str(workload["side"])
    where = f"{'ahead of' if side == 'ahead' else 'behind'} the window, with {fix}"
    if last_failing is None:
        reach = _signed(side, first_holding) if first_holding is not None else "?"
        verdict = f"{where}: no segment up to {reach} reset a connection"
        if fix != "none":
            verdict += ": the fix holds"
        elif side == "behind":
            verdict += ": this kernel ignores segments behind the window (6e250dcbff1d, 6.1)"
        else:
            verdict += ": this kernel is not affected"
        return {"fix": fix, "side": side, "resets_from": None, "needs_fix": False, "line": verdict}
    harmless = _signed(side, first_holding) if first_holding is not None else "none"
    return {
        "fix": fix,
        "side": side,
        "resets_from": SIDES[side] * last_failing,
        "harmless_up_to": None if first_holding is None else SIDES[side] * first_holding,
        "needs_fix": fix == "none",
        "line": f"{where}: segments up to {harmless} pass, from {_signed(side, last_failing)} on they "
        "reset the connection"
        + (": this kernel still needs a fix for #74839" if fix == "none" else ": the fix FAILS"),
    }


sweep = Sweep(
    name="boom-offset",
    experiment=experiment,
    vary="distance",
    space=range(0, 262_144 + 1, 4096),
    holds=no_reset,
    holds_when="below",
    workloads=[
        {"side": side, "fix": fix}
        for fix in ("none", "be-liberal", "drop-invalid")
        for side in ("ahead", "behind")
    ],
    recommend=recommend,
    description=__doc__ or "",
)
