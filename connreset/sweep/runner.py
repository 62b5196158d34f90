"""Running a sweep: on one open testbed, every trial a real run, results written at the end."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

from connreset.engine.results import RunResult
from connreset.engine.runner import run_on
from connreset.journal import JournalWriter
from connreset.logs import get_logger
from connreset.plan import build
from connreset.sweep.results import SweepResult, recommend, write
from connreset.sweep.search import search
from connreset.sweep.spec import Sweep, Trial
from connreset.testbed import Testbed

log = get_logger("connreset.sweep")
DATABASE = Path(".connreset/sweeps")


async def run_sweep(
    spec: Sweep,
    testbed: Testbed,
    *,
    out: Path | None = None,
    seed: int | None = None,
    max_trials: int | None = None,
    time_budget: float | None = None,
    database: Path | None = DATABASE,
    confirm: bool = True,
    on_trial: Callable[[Trial], None] | None = None,
) -> SweepResult:
    """Search each workload's boundary on ``testbed`` (opened here if it is not open yet).

    The lab stays up between trials; each trial is a run of the experiment (its changes undone
    at its end), journaled under ``out/journals/`` when ``out`` is given. ``database`` keeps
    hypothesis's failing examples, so a rerun tries known failures first.
    """
    opened_here = not testbed.is_open
    if opened_here:
        await testbed.open()
    count = 0

    async def trial(params: Mapping[str, object]) -> RunResult:
        nonlocal count
        count += 1
        journal = None
        if out is not None:
            journal = JournalWriter(out / "journals" / f"trial-{count:04d}.json")
        try:
            return await run_on(testbed, build(spec.experiment, params), journal=journal)
        finally:
            if journal is not None:
                journal.close()

    try:
        t0 = time.monotonic()
        trials, boundaries = await search(
            spec,
            trial,
            seed_value=seed,
            max_trials=max_trials,
            time_budget=time_budget,
            database=database / spec.name if database is not None else None,
            on_trial=on_trial,
        )
        recommendation = recommend(spec, boundaries)
        confirmations: list[Mapping[str, object]] = []
        if confirm and spec.confirm is not None:
            for b, rec in zip(boundaries, recommendation, strict=True):
                for c in spec.confirm(b.workload, rec):
                    checked = await trial({**spec.fixed, **b.workload, **c.params})
                    holds = bool(spec.holds(checked))
                    metric = spec.metric(checked) if spec.metric else None
                    confirmations.append(
                        {
                            "label": c.label,
                            "workload": dict(b.workload),
                            "params": dict(c.params),
                            "expect": c.expect,
                            "holds": holds,
                            "metric": metric,
                            "as_expected": holds == c.expect,
                            "line": f"{c.label}: {'holds' if holds else 'fails'} "
                            f"({'as expected' if holds == c.expect else 'NOT as expected'})",
                        }
                    )
        settings = {
            "seed": seed,
            "max_trials": max_trials,
            "time_budget": time_budget,
            "seconds": round(time.monotonic() - t0, 1),
            "testbed": testbed.name,
        }
    finally:
        if opened_here:
            await testbed.close()
    result = SweepResult(
        spec.name,
        spec.vary,
        tuple(trials),
        tuple(boundaries),
        recommendation,
        settings,
        tuple(confirmations),
        str(out) if out is not None else None,
    )
    if out is not None:
        write(spec, result, out)
    return result
