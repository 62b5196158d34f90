"""Load a sweep file: run it and find ``sweep``; check every trial it may run before any runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connreset.errors import ValidationError
from connreset.experiment.checks import check_plan
from connreset.experiment.loader import run_file
from connreset.experiment.plan import build
from connreset.sweep.spec import Sweep
from connreset.testbed import Testbed


def load_sweep(path: str | Path) -> tuple[Sweep, dict[str, dict[str, object]]]:
    """The file's ``sweep`` and its ``cluster_options`` (defaults per cluster backend)."""
    module = run_file(path, "sweep")
    found: Any = getattr(module, "sweep", None)
    if not isinstance(found, Sweep):
        raise ValidationError("defines no `sweep = Sweep(...)`", file=str(path))
    options: Any = getattr(module, "cluster_options", None) or {}
    return found, options


def check_trials(spec: Sweep, testbed: Testbed, path: str | Path) -> None:
    """Build the plan of every trial the search may run (each workload at each value of the
    space) and check it against the testbed, as a run would, before the testbed is opened.

    Raises:
        ValidationError: naming the file, the value and the workload, and what is wrong.
    """
    for workload in spec.workloads:
        for value in spec.space:
            params = {**spec.fixed, **workload, spec.vary: value}
            try:
                plan = build(spec.experiment, params)
                check_plan(plan.phases, testbed)
            except Exception as exc:  # a refusal, or the experiment function's own error
                where = ", ".join(f"{k}={v}" for k, v in params.items())
                what = str(exc) if isinstance(exc, (ValidationError, ValueError)) else repr(exc)
                raise ValidationError(f"the trial {where}: {what}", file=str(path)) from None
