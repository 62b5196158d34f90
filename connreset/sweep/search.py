"""The search: hypothesis finds where the property fails and shrinks to the boundary.

Each example is one real trial on the open testbed. The searched value is drawn so that the
*simplest* example is the safe end of the space and every shrink moves a failing example towards
the safe end: hypothesis's shrinker therefore walks a failure to the last failing value, the
boundary. Because the property is monotone along the searched parameter (``holds_when``), each
trial also answers for every value beyond it; examples answered that way cost nothing, so the
search spends trials only where the boundary can still be, about one per halving.

A noisy machine must not move a boundary: each value's first run is confirmed by ``repeats`` more
before the search relies on it. A run that cannot tell, or runs that disagree, make the value
*inconclusive*: the search never learns from it and works around it (the next most telling value
that is not inconclusive), and hypothesis sees it as an invalid example (``reject()``), so its
shrinker and its database only ever see confirmed verdicts. A boundary is then ``confirmed`` (the
last failing and first holding values are neighbours), a ``range`` (only inconclusive values lie
between them), or ``inconclusive`` (a side of it is not known).

Hypothesis runs in a worker thread (it is synchronous); each trial is sent to the event loop that
owns the testbed and waited for there. When a trial begins, the search says where it stands
(:class:`Standing`); cancelled, it stops the trial in flight, waits for its undos, and raises
:class:`SearchCancelled` with where it stood.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

import attrs
from hypothesis import HealthCheck, Phase, given, reject, seed, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

from connreset.engine.results import RunResult
from connreset.sweep.budget import Budget, declared_seconds
from connreset.sweep.spec import Sweep, Trial, Workload
from connreset.sweep.verdict import Verdict, as_verdict

#: Runs the experiment once with these parameters and returns its result.
TrialRunner = Callable[[Mapping[str, object]], Coroutine[Any, Any, RunResult]]


@attrs.frozen
class Boundary:
    """Where the property stops holding for one workload.

    ``last_failing``/``first_holding`` are the values of the space that confirmed trials put on
    either side (None: the property failed, or held, all the way to the space's end).
    ``complete`` is False when the trial or time budget ran out first, or the search was stopped.
    ``confidence``: ``confirmed`` (the two are neighbours, or an end of the space settles it),
    ``range`` (the boundary lies between them, and the values between were inconclusive or not
    reached), ``inconclusive`` (a side is unknown); ``why`` says why it is not confirmed, and
    ``inconclusive`` lists the values whose runs could not tell or disagreed.
    """

    workload: Workload
    last_failing: int | None
    first_holding: int | None
    trials: int
    complete: bool
    minimal_failing: int | None  # what hypothesis shrank to
    confidence: str = "confirmed"
    why: str = ""
    inconclusive: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "workload": dict(self.workload),
            "last_failing": self.last_failing,
            "first_holding": self.first_holding,
            "trials": self.trials,
            "complete": self.complete,
            "minimal_failing": self.minimal_failing,
            "confidence": self.confidence,
            "why": self.why,
            "inconclusive": list(self.inconclusive),
        }


class _Knowledge:
    """What the confirmed trials of one workload say, and what follows from them by monotonicity.

    Positions ``d`` count from the safe end of the space (``d = 0``: where the property is most
    likely to hold) towards the other: the property holds up to some ``d`` and fails beyond it.
    ``unsure`` has the positions whose runs could not tell or disagreed, with why: nothing is
    learnt from them, and the search does not ask them again.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.holds_up_to = -1  # the largest d confirmed to hold
        self.fails_from = size  # the smallest d confirmed to fail
        self.unsure: dict[int, str] = {}

    def answer(self, d: int) -> bool | None:
        """The confirmed (or implied) verdict at ``d``; None if unknown or inconclusive."""
        if d <= self.holds_up_to:
            return True
        if d >= self.fails_from:
            return False
        return None

    def open(self, d: int) -> bool:
        """Unknown, and not inconclusive: a trial there can still tell something."""
        return self.answer(d) is None and d not in self.unsure

    def learn(self, d: int, holds: bool) -> None:
        if holds:
            self.holds_up_to = max(self.holds_up_to, d)
        else:
            self.fails_from = min(self.fails_from, d)

    def most_telling(self) -> int | None:
        """The open position nearest the middle of what is unknown (its trial halves it, or as
        near as the inconclusive positions allow); None if none is open."""
        low, high = self.holds_up_to, self.fails_from
        middle = (low + high) // 2
        candidates = [d for d in range(low + 1, high) if d not in self.unsure]
        return min(candidates, key=lambda d: (abs(d - middle), d)) if candidates else None

    @property
    def resolved(self) -> bool:
        """No trial can narrow it further: neighbours, or only inconclusive positions between."""
        return self.most_telling() is None

    @property
    def settled(self) -> bool:
        """The boundary is known: resolved, or the property fails (or holds) everywhere."""
        return self.resolved or self.fails_from == 0 or self.holds_up_to == self.size - 1

    def left(self) -> int:
        """At most this many more values settle it: each end not tried yet, then one per halving
        of what is still open between them (fewer when an end settles it)."""
        if self.settled:
            return 0
        low, high, ends = self.holds_up_to, self.fails_from, 0
        if high == self.size and self.size - 1 not in self.unsure:
            high, ends = self.size - 1, ends + 1
        if low == -1 and 0 not in self.unsure:
            low, ends = 0, ends + 1
        open_ = sum(1 for d in range(low + 1, high) if d not in self.unsure)
        return ends + open_.bit_length()  # about ceil(log2(open + 1))

    def confidence(self) -> tuple[str, str]:
        """``confirmed``, ``range`` or ``inconclusive``, and why it is not confirmed."""
        gap = self.fails_from - self.holds_up_to
        whys = sorted(set(self.unsure.values()))
        if gap == 1 or self.fails_from == 0 or self.holds_up_to == self.size - 1:
            return "confirmed", ""
        between = [d for d in range(self.holds_up_to + 1, self.fails_from)]
        unsure = [d for d in between if d in self.unsure]
        why = "; ".join(whys) if unsure else ""
        if self.holds_up_to >= 0 and self.fails_from < self.size:
            if len(unsure) == len(between):
                return "range", f"the values between were inconclusive: {why}"
            return "range", "the search was cut before it narrowed it" + (f"; {why}" if why else "")
        side = "no value was confirmed to hold" if self.holds_up_to < 0 else "no value was confirmed to fail"
        if self.holds_up_to < 0 and self.fails_from == self.size:
            side = "no value was confirmed either way"
        return "inconclusive", side + (f": {why}" if why else "")


@attrs.frozen
class Standing:
    """Where a search stands when a trial begins (``now``: its parameters, the workload's and the
    searched one), or once it is over (``now`` empty).

    ``boundaries`` has each workload searched so far, the one being searched marked incomplete
    until its trials settle it; ``left`` is the most trials still needed (one per halving of what
    is unknown, within ``max_trials``), fewer when the search settles early.
    """

    trials: tuple[Trial, ...]
    boundaries: tuple[Boundary, ...]
    left: int
    now: Mapping[str, object] = attrs.field(factory=dict)


class SearchCancelled(asyncio.CancelledError):
    """The search was cancelled; the trial in flight undid its changes first. ``standing`` is
    where the search stood: the trials that ended, and each boundary as far as they settle it."""

    def __init__(self, standing: Standing) -> None:
        super().__init__("search cancelled")
        self.standing = standing


async def search(
    spec: Sweep,
    trial: TrialRunner,
    *,
    seed_value: int | None = None,
    max_trials: int | None = None,
    time_budget: float | None = None,
    budget: Budget | None = None,
    database: Path | None = None,
    on_progress: Callable[[Standing], None] | None = None,
) -> tuple[list[Trial], list[Boundary]]:
    """Search every workload's boundary; return every trial (every run), in order, and the
    boundaries.

    ``budget`` (shared with the confirmation runs; else one made from ``max_trials`` and
    ``time_budget``) decides whether each run may begin. ``on_progress`` is called in the event
    loop when each run begins, with where the search stands.

    Raises:
        TrialError: a trial ended in error, or the property could not judge it.
        SearchCancelled: the search was cancelled (after the trial in flight undid its changes).
    """
    loop = asyncio.get_running_loop()
    budget = budget if budget is not None else Budget(max_trials, time_budget)
    before_all = budget.used
    trials: list[Trial] = []
    boundaries: list[Boundary] = []
    searching: list[tuple[Workload, _Knowledge, int]] = []  # the workload being searched
    stop = False
    failure: list[TrialError] = []  # a trial that ended in error stops the whole sweep
    running: set[asyncio.Task[RunResult]] = set()
    confirms = 2 if spec.repeats is None else spec.repeats  # the most a value can take
    at_value = [0]  # runs made so far at the value being confirmed

    def standing(now: Mapping[str, object] | None = None) -> Standing:
        so_far = list(boundaries)
        left = 0
        if searching:
            workload, knowledge, before = searching[0]
            so_far.append(_boundary(spec, workload, knowledge, budget.used - before, None, False))
            left += knowledge.left()
        left += (len(spec.workloads) - len(so_far)) * _Knowledge(spec.size).left()
        left = max(0, left * (1 + confirms) - at_value[0])
        if budget.max_trials is not None:
            left = min(left, max(0, budget.max_trials - (budget.used - before_all)))
        return Standing(tuple(trials), tuple(so_far), left, dict(now or {}))

    async def tracked(params: Mapping[str, object]) -> RunResult:
        """The trial, in the event loop; one that begins after the search was stopped does not run."""
        if stop:
            raise asyncio.CancelledError
        task = asyncio.current_task()
        assert task is not None
        running.add(task)
        try:
            return await trial(params)
        finally:
            running.discard(task)

    def run_once(workload: Workload, value: int, run: int) -> tuple[Trial, Verdict]:
        """One run of the experiment at ``value``: its verdict, recorded as a trial."""
        if stop:
            raise asyncio.CancelledError
        if failure:
            raise failure[0]
        params = {**spec.fixed, **workload, spec.vary: value}
        if on_progress is not None:
            loop.call_soon_threadsafe(on_progress, standing({**workload, spec.vary: value}))
        t0 = time.monotonic()
        try:
            result = asyncio.run_coroutine_threadsafe(tracked(params), loop).result()
        except concurrent.futures.CancelledError:  # stopped: it undid its changes first
            raise asyncio.CancelledError from None
        where = f"{spec.vary}={value} ({_words(workload)})"
        if result.outcome == "error":
            errors = [f"{s.name}: {s.detail}" for s in result.steps if s.status == "error"]
            failure.append(TrialError(f"{where}: {'; '.join(errors) or 'error'}"))
            raise failure[0]
        try:
            verdict = as_verdict(spec.holds(result))
        except Exception as exc:  # the property could not judge this run
            failure.append(TrialError(f"{where}: {exc}"))
            raise failure[0] from None
        metric = spec.metric(result) if spec.metric else None
        seconds = time.monotonic() - t0
        budget.used += 1
        budget.record(seconds, declared_seconds(spec.plan(params)))
        done = Trial(
            workload,
            {spec.vary: value},
            verdict.holds,
            metric,
            seconds,
            result.run_id,
            run,
            verdict.noise,
            verdict.spread,
            verdict.why,
        )
        trials.append(done)
        return done, verdict

    def probe(workload: Workload, knowledge: _Knowledge, d: int) -> None:
        """Runs at ``d`` until its verdict is confirmed (learnt) or it is inconclusive."""
        value = _positions(spec)(d)
        if not budget.allows():
            return
        try:
            confirm(workload, knowledge, d, value)
        finally:
            at_value[0] = 0

    def confirm(workload: Workload, knowledge: _Knowledge, d: int, value: int) -> None:
        first, verdict = run_once(workload, value, 0)
        at_value[0] = 1
        if first.holds is None:
            knowledge.unsure[d] = f"{value}: {verdict.why or 'inconclusive'}"
            return
        wanted = spec.repeats
        if wanted is None:  # from the measurement: a close call is confirmed twice
            wanted = 2 if verdict.margin is not None and abs(verdict.margin) < 2 else 1
        for run in range(1, wanted + 1):
            if not budget.allows():
                knowledge.unsure[d] = f"{value}: {first.word}, not confirmed ({budget.cut})"
                return
            again, said = run_once(workload, value, run)
            at_value[0] = run + 1
            if again.holds is None:
                knowledge.unsure[d] = (
                    f"{value}: {first.word}, then inconclusive ({said.why or 'no reason given'})"
                )
                return
            if again.holds != first.holds:
                knowledge.unsure[d] = f"{value}: the runs disagree ({first.word}, then {again.word})"
                return
        knowledge.learn(d, bool(first.holds))

    def one_workload(workload: Workload) -> Boundary:
        size = spec.size
        value_of = _positions(spec)
        knowledge = _Knowledge(size)
        before = budget.used
        searching[:] = [(workload, knowledge, before)]

        def answer(d: int, exact: bool = False) -> bool | None:
            """The confirmed verdict at ``d``: from what earlier trials imply, or from new ones,
            each where it halves what is unknown (so hypothesis's questions cost one value per
            halving), or at ``d`` itself when ``exact`` (replaying a known failure). None when
            ``d`` is inconclusive, or no run is left to tell."""
            while (known := knowledge.answer(d)) is None:
                if d in knowledge.unsure or not budget.allows():
                    return None
                at = d if exact else knowledge.most_telling()
                if at is None:
                    return None
                tried = len(trials)
                probe(workload, knowledge, at)
                if len(trials) == tried:  # the budget did not allow it
                    return None
            return known

        minimal: list[int] = []
        db: ExampleDatabase | None = DirectoryBasedExampleDatabase(str(database)) if database else None

        def hypothesis_pass(phases: tuple[Phase, ...]) -> None:
            exact = phases == (Phase.reuse,)

            def check(d: int) -> None:
                holds = answer(d, exact)
                if holds is None:
                    reject()  # inconclusive: neither the shrinker nor the database sees it
                if not holds:
                    minimal[:] = [value_of(d)]
                assert holds, f"{spec.vary}={value_of(d)} fails"

            # the database keeps examples per test: one per sweep, space and workload (as pytest
            # does for each parametrized case); a position means nothing in another space
            check._hypothesis_internal_add_digest = json.dumps(  # type: ignore[attr-defined]
                [spec.name, spec.vary, list(spec.space), sorted(map(str, workload.items()))]
            ).encode()
            configured = settings(
                max_examples=max(50, 4 * size),
                deadline=None,
                database=db,
                phases=phases,
                suppress_health_check=list(HealthCheck),
                report_multiple_bugs=False,
                print_blob=False,
            )(given(st.integers(0, size - 1))(check))
            if seed_value is not None:
                configured = seed(seed_value)(configured)
            try:
                configured()
            except AssertionError:
                pass  # hypothesis replayed its minimal failing example last: ``minimal`` holds it
            except BaseException as exc:
                if failure:  # hypothesis saw the trial's error as a failure; it is not one
                    raise failure[0] from None
                # a reuse-only pass with nothing saved yet "runs no test cases": unittest's (or,
                # under pytest, pytest's) skip exception; every example inconclusive:
                # Unsatisfiable; anything else is real
                if type(exc).__name__ not in ("SkipTest", "Skipped", "Unsatisfiable"):
                    raise

        # known failures first (hypothesis's database: a rerun replays them), then both ends of the
        # space, which settle "holds everywhere" and "fails everywhere" at once, then the search
        if db is not None:
            hypothesis_pass((Phase.reuse,))
        if knowledge.open(size - 1):
            probe(workload, knowledge, size - 1)
        if knowledge.open(0) and knowledge.holds_up_to < size - 1:
            probe(workload, knowledge, 0)
        if not knowledge.settled and budget.allows():
            hypothesis_pass((Phase.reuse, Phase.generate, Phase.shrink))
            while not knowledge.settled and budget.allows():  # what hypothesis did not ask about
                at = knowledge.most_telling()
                if at is None:
                    break
                probe(workload, knowledge, at)
        searching.clear()
        return _boundary(
            spec,
            workload,
            knowledge,
            budget.used - before,
            minimal[0] if minimal else None,
            knowledge.settled,
        )

    def all_workloads() -> None:
        for workload in spec.workloads:
            boundaries.append(one_workload(workload))
            if failure:
                raise failure[0]

    worker = asyncio.ensure_future(asyncio.to_thread(all_workloads))
    try:
        await asyncio.shield(worker)
    except asyncio.CancelledError:
        stop = True
        for task in list(running):
            task.cancel()
        await asyncio.wait([worker])  # the trial in flight undoes its changes first
        raise SearchCancelled(standing()) from None
    return trials, boundaries


def _boundary(
    spec: Sweep,
    workload: Workload,
    knowledge: _Knowledge,
    used: int,
    minimal: int | None,
    complete: bool,
) -> Boundary:
    """What the confirmed trials of one workload say: the values either side, and how sure."""
    value_of = _positions(spec)
    confidence, why = knowledge.confidence()
    if not complete and confidence == "confirmed":
        confidence, why = "range", "the search was cut before it narrowed it"
    return Boundary(
        workload,
        value_of(knowledge.fails_from) if knowledge.fails_from < spec.size else None,
        value_of(knowledge.holds_up_to) if knowledge.holds_up_to >= 0 else None,
        used,
        complete,
        minimal,
        confidence,
        why,
        tuple(sorted(value_of(d) for d in knowledge.unsure)),
    )


def _positions(spec: Sweep) -> Callable[[int], int]:
    """The value at each position: d = 0 is the safe end; a larger d is further into where the
    property may fail."""
    space, size = spec.space, spec.size
    return (lambda d: space[size - 1 - d]) if spec.holds_when == "above" else (lambda d: space[d])


def _words(workload: Workload) -> str:
    return ", ".join(f"{k}={v}" for k, v in workload.items()) or "defaults"


class TrialError(Exception):
    """A trial ended in error: its result says nothing about the property."""
