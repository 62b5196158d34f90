"""A sweep's time budget: one deadline for the search and the confirmation runs together.

A run begins only if it is expected to end before the deadline (its expected length: the longest
run so far, or, for a run unlike the search's, the waits its plan declares plus the overhead the
search's runs showed). A run that does begin is let finish, so a sweep never ends later than its
deadline by more than one run's length.
"""

from __future__ import annotations

import time

from connreset.experiment.plan import Plan
from connreset.steps.control import Wait
from connreset.steps.node import Observe


class Budget:
    """Runs used, and time left, for a whole sweep (``max_trials`` counts the search's runs)."""

    def __init__(self, max_trials: int | None, time_budget: float | None, start: float | None = None) -> None:
        self.max_trials = max_trials
        self.start = time.monotonic() if start is None else start
        self.deadline = self.start + time_budget if time_budget else None
        self.search_deadline = self.deadline  # earlier when the confirmations' time is kept back
        self.used = 0
        self.longest = 0.0
        self.overheads: list[float] = []
        self.cut = ""  # why a run that was wanted did not begin ("" while none was refused)

    def record(self, seconds: float, declared: float) -> None:
        self.longest = max(self.longest, seconds)
        self.overheads.append(max(0.0, seconds - declared))

    def overhead(self) -> float:
        """What a run takes beyond the waits it declares (setup, undos): the most seen so far."""
        return max(self.overheads, default=0.0)

    def remaining(self, deadline: float | None = None) -> float | None:
        deadline = self.deadline if deadline is None else deadline
        return None if deadline is None else deadline - time.monotonic()

    def allows(self, expected: float | None = None, *, search: bool = True) -> bool:
        """May a run of ``expected`` seconds (default: the longest so far) begin now?"""
        if search and self.max_trials is not None and self.used >= self.max_trials:
            self.cut = self.cut or f"the search's {self.max_trials} runs (--max-trials) were used"
            return False
        deadline = self.search_deadline if search else self.deadline
        if deadline is None:
            return True
        need = self.longest if expected is None else expected
        if time.monotonic() + need <= deadline:
            return True
        self.cut = self.cut or "the time budget ran out"
        return False


def declared_seconds(plan: Plan) -> float:
    """The seconds a plan says it will wait or observe: a floor on how long its run takes."""
    total = 0.0
    for phase in plan.phases:
        for flat in phase.steps:
            step = flat.step
            if isinstance(step, Wait) and step.seconds is not None:
                total += step.seconds
            elif isinstance(step, Observe):
                total += step.duration
    return total
