"""The typed result of a run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import attrs

from connreset.experiment.claims import ClaimResult

Outcome = Literal["passed", "failed", "error"]
StepStatus = Literal["ok", "failed", "error", "skipped", "cancelled"]
EXIT_CODES: dict[str, int] = {"passed": 0, "failed": 1, "error": 3}


@attrs.frozen
class StepResult:
    name: str
    kind: str
    phase: str
    status: StepStatus
    started_at: str | None
    duration_s: float
    detail: str


@attrs.frozen
class UndoResult:
    action: str
    node: str
    description: str
    status: Literal["done", "failed"]
    verified: bool
    detail: str


@attrs.frozen
class PhaseVerdict:
    phase: str
    status: Literal["passed", "failed", "error", "skipped", "cancelled"]
    expect: str
    findings: Mapping[str, object]
    failures: tuple[str, ...]


@attrs.frozen
class RunResult:
    """What a run did and concluded. ``outcome`` is passed / failed / error."""

    experiment: str
    params: Mapping[str, object]
    testbed: str
    outcome: Outcome
    cancelled: bool
    steps: tuple[StepResult, ...]
    phases: tuple[PhaseVerdict, ...]
    findings: Mapping[str, Mapping[str, object]]
    undo: tuple[UndoResult, ...]
    journal: str | None
    run_id: str = ""
    pending: tuple[str, ...] = ()
    """Undos that did not complete (abandoned, timed out or failed): ``connreset restore`` them."""
    claims: tuple[ClaimResult, ...] = ()
    """The experiment's claims, judged against the findings (:mod:`connreset.experiment.claims`)."""
    conclusions: Mapping[str, str] = attrs.field(factory=dict)
    """Each phase's conclusion in one line of words (phases without one are left out)."""

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    @property
    def exit_code(self) -> int:
        return 130 if self.cancelled else EXIT_CODES[self.outcome]


def phase_status(statuses: list[str]) -> Literal["passed", "failed", "error", "skipped", "cancelled"]:
    if "error" in statuses:
        return "error"
    if "failed" in statuses:
        return "failed"
    if "cancelled" in statuses:
        return "cancelled"
    if statuses and all(s == "skipped" for s in statuses):
        return "skipped"
    return "passed"
