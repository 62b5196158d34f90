"""The search: hypothesis finds where the property fails and shrinks to the boundary.

Each example is one real trial on the open testbed. The searched value is drawn so that the
*simplest* example is the safe end of the space and every shrink moves a failing example towards
the safe end: hypothesis's shrinker therefore walks a failure to the last failing value, the
boundary. Because the property is monotone along the searched parameter (``holds_when``), each
trial also answers for every value beyond it; examples answered that way cost nothing, so the
search spends trials only where the boundary can still be, about one per halving.

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
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

from connreset.engine.results import RunResult
from connreset.sweep.spec import Sweep, Trial, Workload

#: Runs the experiment once with these parameters and returns its result.
TrialRunner = Callable[[Mapping[str, object]], Coroutine[Any, Any, RunResult]]


@attrs.frozen
class Boundary:
    """Where the property stops holding for one workload.

    ``last_failing``/``first_holding`` are the neighbouring values of the space that the trials
    put on either side (None: the property failed, or held, all the way to the space's end).
    ``complete`` is False when the trial or time budget ran out first, or the search was stopped.
    """

    workload: Workload
    last_failing: int | None
    first_holding: int | None
    trials: int
    complete: bool
    minimal_failing: int | None  # what hypothesis shrank to

    def to_json(self) -> dict[str, Any]:
        return {
            "workload": dict(self.workload),
            "last_failing": self.last_failing,
            "first_holding": self.first_holding,
            "trials": self.trials,
            "complete": self.complete,
            "minimal_failing": self.minimal_failing,
        }


class _Budget:
    def __init__(self, max_trials: int | None, time_budget: float | None) -> None:
        self.max_trials = max_trials
        self.deadline = time.monotonic() + time_budget if time_budget else None
        self.used = 0

    def left(self) -> bool:
        if self.max_trials is not None and self.used >= self.max_trials:
            return False
        return self.deadline is None or time.monotonic() < self.deadline


class _Knowledge:
    """What the trials of one workload say, and what follows from them by monotonicity.

    Positions ``d`` count from the safe end of the space (``d = 0``: where the property is most
    likely to hold) towards the other: the property holds up to some ``d`` and fails beyond it.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.holds_up_to = -1  # the largest d a trial saw hold
        self.fails_from = size  # the smallest d a trial saw fail

    def answer(self, d: int) -> bool | None:
        if d <= self.holds_up_to:
            return True
        if d >= self.fails_from:
            return False
        return None

    def learn(self, d: int, holds: bool) -> None:
        if holds:
            self.holds_up_to = max(self.holds_up_to, d)
        else:
            self.fails_from = min(self.fails_from, d)

    def most_telling(self) -> int:
        """The position whose trial halves what is still unknown."""
        return (self.holds_up_to + self.fails_from) // 2

    @property
    def resolved(self) -> bool:
        return self.fails_from - self.holds_up_to == 1

    @property
    def settled(self) -> bool:
        """The boundary is known: resolved, or the property fails (or holds) everywhere."""
        return self.resolved or self.fails_from == 0 or self.holds_up_to == self.size - 1

    def left(self) -> int:
        """At most this many more trials settle it: each end not tried yet, then one trial per
        halving of what is still unknown between them (fewer when an end settles it)."""
        if self.settled:
            return 0
        low, high, ends = self.holds_up_to, self.fails_from, 0
        if high == self.size:
            high, ends = self.size - 1, ends + 1
        if low == -1:
            low, ends = 0, ends + 1
        return ends + (high - low - 1).bit_length()  # ceil(log2(high - low))


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
    database: Path | None = None,
    on_progress: Callable[[Standing], None] | None = None,
) -> tuple[list[Trial], list[Boundary]]:
    """Search every workload's boundary; return every trial, in order, and the boundaries.

    ``on_progress`` is called in the event loop when each trial begins, with where the search
    stands.

    Raises:
        TrialError: a trial ended in error, or the property could not judge it.
        SearchCancelled: the search was cancelled (after the trial in flight undid its changes).
    """
    loop = asyncio.get_running_loop()
    budget = _Budget(max_trials, time_budget)
    trials: list[Trial] = []
    boundaries: list[Boundary] = []
    searching: list[tuple[Workload, _Knowledge, int]] = []  # the workload being searched
    stop = False
    failure: list[TrialError] = []  # a trial that ended in error stops the whole sweep
    running: set[asyncio.Task[RunResult]] = set()

    def standing(now: Mapping[str, object] | None = None) -> Standing:
        so_far = list(boundaries)
        left = 0
        if searching:
            workload, knowledge, before = searching[0]
            so_far.append(_boundary(spec, workload, knowledge, budget.used - before, None))
            left += knowledge.left()
        left += (len(spec.workloads) - len(so_far)) * _Knowledge(spec.size).left()
        if max_trials is not None:
            left = min(left, max(0, max_trials - budget.used))
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

    def run_trial(workload: Workload, value: int) -> bool:
        if stop:
            raise asyncio.CancelledError
        params = {**spec.fixed, **workload, spec.vary: value}
        if on_progress is not None:
            loop.call_soon_threadsafe(on_progress, standing({**workload, spec.vary: value}))
        verdicts, metric, detail, t0 = [], None, "", time.monotonic()
        for _ in range(spec.repeats):
            if stop:
                raise asyncio.CancelledError
            if failure:
                raise failure[0]
            try:
                result = asyncio.run_coroutine_threadsafe(tracked(params), loop).result()
            except concurrent.futures.CancelledError:  # stopped: it undid its changes first
                raise asyncio.CancelledError from None
            if result.outcome == "error":
                errors = [f"{s.name}: {s.detail}" for s in result.steps if s.status == "error"]
                failure.append(
                    TrialError(f"{spec.vary}={value} ({_words(workload)}): {'; '.join(errors) or 'error'}")
                )
                raise failure[0]
            try:
                verdicts.append(bool(spec.holds(result)))
            except Exception as exc:  # the property could not judge this run
                failure.append(TrialError(f"{spec.vary}={value} ({_words(workload)}): {exc}"))
                raise failure[0] from None
            metric = spec.metric(result) if spec.metric else None
            detail = result.run_id
        budget.used += 1
        done = Trial(workload, {spec.vary: value}, all(verdicts), metric, time.monotonic() - t0, detail)
        trials.append(done)
        return done.holds

    def one_workload(workload: Workload) -> Boundary:
        size = spec.size
        value_of = _positions(spec)
        knowledge = _Knowledge(size)
        before = budget.used
        searching[:] = [(workload, knowledge, before)]

        def answer(d: int, exact: bool = False) -> bool:
            """The verdict at ``d``: from what earlier trials imply, or from new ones, each run where
            it halves what is unknown (so hypothesis's questions cost one trial per halving), or
            at ``d`` itself when ``exact`` (replaying a known failure)."""
            while (known := knowledge.answer(d)) is None:
                if not budget.left():
                    return True  # no trial left: assume it holds (the boundary is then incomplete)
                probe = d if exact else knowledge.most_telling()
                knowledge.learn(probe, run_trial(workload, value_of(probe)))
            return known

        minimal: list[int] = []
        db: ExampleDatabase | None = DirectoryBasedExampleDatabase(str(database)) if database else None

        def hypothesis_pass(phases: tuple[Phase, ...]) -> None:
            exact = phases == (Phase.reuse,)

            def check(d: int) -> None:
                holds = answer(d, exact)
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
                # under pytest, pytest's) skip exception; anything else is real
                if type(exc).__name__ not in ("SkipTest", "Skipped"):
                    raise

        # known failures first (hypothesis's database: a rerun replays them), then both ends of the
        # space, which settle "holds everywhere" and "fails everywhere" at once, then the search
        if db is not None:
            hypothesis_pass((Phase.reuse,))
        if knowledge.answer(size - 1) is None and budget.left():
            knowledge.learn(size - 1, run_trial(workload, value_of(size - 1)))
        if knowledge.answer(0) is None and knowledge.fails_from < size and budget.left():
            knowledge.learn(0, run_trial(workload, value_of(0)))
        if knowledge.fails_from < size and knowledge.holds_up_to >= 0:
            hypothesis_pass((Phase.reuse, Phase.generate, Phase.shrink))
            while not knowledge.resolved and budget.left():  # what hypothesis did not ask about
                answer(knowledge.most_telling())
        searching.clear()
        return _boundary(spec, workload, knowledge, budget.used - before, minimal[0] if minimal else None)

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
    spec: Sweep, workload: Workload, knowledge: _Knowledge, used: int, minimal: int | None
) -> Boundary:
    """What the trials of one workload say: the values either side, settled or not."""
    value_of = _positions(spec)
    return Boundary(
        workload,
        value_of(knowledge.fails_from) if knowledge.fails_from < spec.size else None,
        value_of(knowledge.holds_up_to) if knowledge.holds_up_to >= 0 else None,
        used,
        knowledge.settled,
        minimal,
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
