"""Does my kernel still reset on segments *behind* the window, like upstream's shape (−100000)?

The same trial as sweep_boom_offset.py (upstream's e2e test, no fix), searched over offsets below
the server's next sequence number. Before 6.1 conntrack marks such a segment INVALID once it lies
further back than the window it tracks, and the connection is reset; since 6e250dcbff1d ("ignore
overly delayed tcp packets", 6.1) it is ignored and nothing resets. Run it under several kernels:

    python -m connreset sweep experiments/sweep_boom_offset_below.py --kernel 5.10,6.1,host
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path

from connreset.sweep import Sweep

_spec = importlib.util.spec_from_file_location(
    "sweep_boom_offset", Path(__file__).with_name("sweep_boom_offset.py")
)
assert _spec is not None and _spec.loader is not None
_above = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_above)

cluster_options = {"lab": {"time_scale": 0.1}}


def recommend(
    workload: Mapping[str, object], last_failing: int | None, first_holding: int | None
) -> dict[str, object]:
    if last_failing is None:
        return {"resets_below": None, "line": "no segment behind the window reset a connection: not affected"}
    return {
        "resets_below": last_failing,
        "line": f"segments from {last_failing:,} back reset the connection (from {first_holding:,} on they "
        "pass): this kernel still needs a fix for #74839 even for upstream's shape",
    }


sweep = Sweep(
    name="boom-offset-below",
    experiment=_above.experiment,
    vary="offset",
    space=range(-262_144, 0 + 1, 4096),
    holds=_above.no_reset,
    holds_when="above",
    workloads=[{"fix": "none"}],
    recommend=recommend,
    description=__doc__ or "",
)
