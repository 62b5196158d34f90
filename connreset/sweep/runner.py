"""Running a sweep: on one open testbed, every trial a real run, results written at the end.

Each trial's events go to the sweep's subscribers, and so do the sweep's own
(:class:`~connreset.events.SweepProgress`, when each trial begins and once at the end).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from connreset import events as ev
from connreset._support.logs import get_logger
from connreset.engine.results import RunResult
from connreset.engine.runner import RunCancelled, run_on
from connreset.engine.watchdog import LEASE
from connreset.runs.journal import JournalWriter
from connreset.sweep.budget import Budget, declared_seconds
from connreset.sweep.outline import outline
from connreset.sweep.progress import boundary_words, from_standing, trial_words
from connreset.sweep.results import SweepResult, recommend, write
from connreset.sweep.search import Boundary, SearchCancelled, search
from connreset.sweep.spec import Sweep, Trial
from connreset.sweep.verdict import as_verdict
from connreset.testbed import Testbed

log = get_logger("connreset.sweep")
DATABASE = Path(".connreset/sweeps")


class SweepCancelled(asyncio.CancelledError):
    """The sweep was stopped; the trial in flight undid its changes first.

    ``result`` has the trials that ended and each boundary as far as they settle it
    (``interrupted``; recommendations only from settled boundaries). ``trial`` is the run that was
    stopped, with its undos (None if no run was in flight). ``written`` lists the files written
    (the results so far, when the sweep had an ``out``); ``error`` says why they could not be.
    """

    def __init__(
        self, result: SweepResult, trial: RunResult | None, written: Sequence[Path], error: str = ""
    ) -> None:
        super().__init__("sweep cancelled")
        self.result = result
        self.trial = trial
        self.written = tuple(written)
        self.error = error


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
    subscribers: Sequence[ev.Subscriber] = (),
    abandon: asyncio.Event | None = None,
    watchdog_lease: float | None = LEASE,
) -> SweepResult:
    """Search each workload's boundary on ``testbed`` (opened here if it is not open yet).

    ``time_budget`` bounds the whole sweep, the testbed's opening and the confirmation runs
    included: no run begins unless it is expected to end within it, so the sweep ends at most one
    run's length after it. The confirmations' expected length is kept back from the search's
    share; confirmations that cannot fit are skipped, and the result's ``cut`` says so.

    The lab stays up between trials; each trial is a run of the experiment (its changes undone
    at its end), journaled under ``out/journals/`` when ``out`` is given. ``database`` keeps
    hypothesis's failing examples, so a rerun tries known failures first. ``subscribers`` get
    every trial's events and the sweep's :class:`~connreset.events.SweepProgress`; ``abandon``
    is each trial's (set it to stop waiting for a stopped trial's undos); ``watchdog_lease``
    each trial's node watchdogs' (see :func:`connreset.run_on`).

    Raises:
        TrialError: a trial ended in error (the sweep stops: an error says nothing about the
            property).
        SweepCancelled: the sweep was cancelled; the trial in flight was undone first, and the
            results so far were written to ``out``.
        asyncio.CancelledError: cancelled while the testbed was opening, before any trial.
    """
    bus = ev.EventBus(list(subscribers))
    t0 = time.monotonic()
    budget = Budget(max_trials, time_budget, start=t0)
    planned_out = outline(spec, time_budget=time_budget, max_trials=max_trials, confirm=confirm)
    budget.search_deadline = t0 + planned_out.search_seconds if planned_out.search_seconds else None
    opened_here = not testbed.is_open
    if opened_here:
        await testbed.open()
    count = 0
    stopped: list[RunResult] = []  # the trial that was in flight when the sweep was cancelled

    async def trial(params: Mapping[str, object]) -> RunResult:
        nonlocal count
        count += 1
        path = out / "journals" / f"trial-{count:04d}.json" if out is not None else None
        journal = JournalWriter(path) if path is not None else None
        try:
            return await run_on(
                testbed,
                spec.plan(params),
                subscribers=subscribers,
                journal=journal,
                journal_path=path,
                abandon=abandon,
                watchdog_lease=watchdog_lease,
            )
        except RunCancelled as exc:
            stopped[:] = [exc.result]
            raise
        finally:
            if journal is not None:
                journal.close()

    trials: Sequence[Trial] = ()
    boundaries: Sequence[Boundary] = ()
    recommendation: tuple[Mapping[str, object], ...] = ()
    confirmations: list[Mapping[str, object]] = []
    interrupted = False
    cut: list[str] = []
    try:
        trials, boundaries = await search(
            spec,
            trial,
            seed_value=seed,
            budget=budget,
            database=database / spec.name if database is not None else None,
            on_progress=lambda standing: bus.emit(from_standing(spec, standing)),
        )
        if budget.cut:
            cut.append(f"the search: {budget.cut} after {budget.used} run(s)")
        recommendation = recommend(spec, boundaries, trials)
        checks = [
            (b, c)
            for b, rec in zip(boundaries, recommendation, strict=True)
            if rec.get("confidence") == "confirmed"
            for c in (spec.confirm(b.workload, rec) if confirm and spec.confirm is not None else ())
        ]
        if checks and planned_out.confirm_skipped:
            cut.append(planned_out.confirm_skipped)
            checks = []
        found = boundary_words(spec, boundaries)
        last = trial_words(spec, trials[-1]) if trials else ""
        planned = len(trials) + len(checks)
        for b, c in checks:
            shown = {**b.workload, **c.params}
            expected = declared_seconds(spec.plan(shown)) + budget.overhead()
            if not budget.allows(expected, search=False):
                left = budget.remaining() or 0.0
                cut.append(
                    f"the confirmation '{c.label}' was skipped: it needs about {expected:.0f} s and "
                    f"{max(0.0, left):.0f} s of the budget were left (its recommendation is not "
                    "confirmed by a long run)"
                )
                continue
            bus.emit(ev.SweepProgress(len(trials) + len(confirmations), planned, shown, found, last))
            checked = await trial(shown)
            holds = as_verdict(spec.holds(checked)).holds
            as_expected = holds == c.expect
            word = {True: "holds", False: "fails", None: "inconclusive"}[holds]
            line = f"{c.label}: {word} ({'as expected' if as_expected else 'NOT as expected'})"
            confirmations.append(
                {
                    "label": c.label,
                    "workload": dict(b.workload),
                    "params": dict(c.params),
                    "expect": c.expect,
                    "holds": holds,
                    "metric": spec.metric(checked) if spec.metric else None,
                    "as_expected": as_expected,
                    "line": line,
                }
            )
            last = line
        bus.emit(ev.SweepProgress(planned, planned, {}, found, last))
    except SearchCancelled as exc:  # the trials that ended are real; the boundaries as far as they go
        interrupted = True
        trials, boundaries = exc.standing.trials, exc.standing.boundaries
        recommendation = recommend(spec, [b for b in boundaries if b.complete], trials)
    except asyncio.CancelledError:  # during the confirmations: the search's results stand
        interrupted = True
    finally:
        if opened_here:
            await testbed.close()
    result = SweepResult(
        spec.name,
        spec.vary,
        tuple(trials),
        tuple(boundaries),
        recommendation,
        {
            "seed": seed,
            "max_trials": max_trials,
            "time_budget": time_budget,
            "repeats": spec.repeats,
            "at_most": planned_out.words,
            "seconds": round(time.monotonic() - t0, 1),
            "testbed": testbed.name,
        },
        tuple(confirmations),
        str(out) if out is not None else None,
        interrupted,
        "; ".join(cut),
    )
    if not interrupted:
        if out is not None:
            write(spec, result, out)
        return result
    written: list[Path] = []
    error = ""
    if out is not None:
        try:
            written = write(spec, result, out)
        except OSError as exc:
            error = f"{out}: {exc.strerror or exc}"
            log.error("could not write the sweep's results", out=str(out), error=str(exc))
    raise SweepCancelled(result, stopped[0] if stopped else None, written, error)
