"""A sweep on the real lab: its boundary against an exhaustive grid over the same space. Root."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from connreset.lab import testbed as lab
from connreset.sweep import load_sweep, run_sweep

pytestmark = pytest.mark.root
ROOT = Path(__file__).parent.parent.parent


async def test_the_lab_sweeps_boundary_equals_the_grids_with_a_quarter_of_its_trials(tmp_path: Path) -> None:
    """Two client pods hold 40 connections each: 80 entries on each node, none churning, so each
    value's verdict is the kernel's and not a race's. The grid runs every value; the sweep ≤ 25%."""
    shipped, _ = load_sweep(ROOT / "experiments/sweep_table_sizes.py")
    spec = attrs.evolve(
        shipped,
        name="grid-check",
        space=tuple(range(64, 64 + 32 * 2, 2)),  # 64…126: 32 values
        workloads=({"pods": 2, "rate": 0, "held": 40, "warmup": 0.5, "window": 1.0},),
        confirm=None,
        recommend=None,
    )
    async with lab(time_scale=0.1) as tb:
        result = await run_sweep(spec, tb, out=tmp_path, seed=1, database=None)
        grid = {}
        for value in spec.space:
            grid[value] = await _holds(spec, tb, value)
    failing = [v for v, ok in grid.items() if not ok]
    holding = [v for v, ok in grid.items() if ok]
    assert failing and holding and max(failing) < min(holding)  # monotone, as the search assumes
    (found,) = result.boundaries
    assert (found.last_failing, found.first_holding) == (max(failing), min(holding))
    assert len(result.trials) <= len(spec.space) // 4
    assert (tmp_path / "results.json").exists() and (tmp_path / "plot.png").exists()


async def _holds(spec: object, tb: object, value: int) -> bool:
    from connreset import run_on
    from connreset.experiment.plan import build

    params = {**spec.workloads[0], spec.vary: value}  # type: ignore[attr-defined]
    result = await run_on(tb, build(spec.experiment, params))  # type: ignore[arg-type,attr-defined]
    assert result.outcome != "error", result.steps
    return bool(spec.holds(result))  # type: ignore[attr-defined]
