"""Events the engine publishes. Console output, the journal and the TUI subscribe; the engine never prints.

Subscribers are plain callables ``fn(event)``, called in order in the engine's event loop; they
must not block. Match on the classes below (``match event: case RunStarted(): ...``).

Times ``t`` are ``time.monotonic()`` seconds (to compare events of one run); ``at`` fields are
wall-clock ISO 8601 strings (for people and the journal).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from connreset._support.logs import get_logger

log = get_logger("connreset.engine")


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


@attrs.frozen
class RunStarted:
    experiment: str
    params: Mapping[str, object]
    testbed: str
    at: str
    environment: Mapping[str, object]
    phases: tuple[str, ...]
    steps: int
    run_id: str = ""
    spec: Mapping[str, object] = attrs.field(factory=dict)  # the TestbedSpec, secrets redacted
    t: float = 0.0
    expects: Mapping[str, str] = attrs.field(factory=dict)  # phase → what it should show
    description: str = ""  # the experiment's words for people


@attrs.frozen
class PhaseStarted:
    phase: str
    t: float


@attrs.frozen
class PhaseFinished:
    phase: str
    status: str
    t: float


@attrs.frozen
class StepStarted:
    step: str
    kind: str
    phase: str
    t: float
    at: str


@attrs.frozen
class StepFinished:
    step: str
    kind: str
    phase: str
    status: str
    t: float
    at: str | None
    duration_s: float
    detail: str


@attrs.frozen
class StepNote:
    step: str
    phase: str
    message: str


@attrs.frozen
class Progress:
    """How far a long step has got (an Observe window, a Scale to 50): for people, not journaled."""

    step: str
    phase: str
    done: float
    total: float
    unit: str = ""
    detail: str = ""


@attrs.frozen
class Sample:
    t: float
    node: str
    metric: str
    value: float


@attrs.frozen
class PodLog:
    t: float
    pod: str
    line: str
    deployment: str = ""


@attrs.frozen
class PodState:
    """One pod as the cluster reported it."""

    name: str
    phase: str
    restarts: int
    node: str | None = None


@attrs.frozen
class PodStates:
    """A deployment's pods, published when a step has looked at them and they changed (a deploy,
    a scale, an assertion's check); not journaled."""

    t: float
    deployment: str
    pods: tuple[PodState, ...]


@attrs.frozen
class SweepProgress:
    """A sweep's progress, published by a sweep between its trials; not journaled by the runs.

    ``boundary`` says in words where the outcome changes so far (e.g. ``max 1200 passes, 600
    fails``), empty while unknown; ``last`` is the outcome of the trial just done.
    """

    done: int
    planned: int
    params: Mapping[str, object] = attrs.field(factory=dict)
    boundary: str = ""
    last: str = ""


@attrs.frozen
class FindingRecorded:
    phase: str
    key: str
    value: object


@attrs.frozen
class NodeInfo:
    node: str
    kernel: str | None = None
    sysctl_before: Mapping[str, str] = attrs.field(factory=dict)
    sysctl_after: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class UndoRecorded:
    record: Any  # UndoRecord; Any keeps this module free of engine imports


@attrs.frozen
class UndoFinished:
    record: Any
    status: str
    verified: bool
    detail: str


@attrs.frozen
class WatchdogChanged:
    """A node watchdog was ``armed`` (with its ``pid``), is ``unavailable`` there (``detail`` says
    why; the journal still holds the undos), or was ``disarmed``; ``fired`` if it had restored."""

    place: str
    state: str
    detail: str = ""
    pid: int | None = None
    lease: float | None = None


@attrs.frozen
class RunFinished:
    outcome: str
    at: str
    t: float
    cancelled: bool = False
    pending: tuple[str, ...] = ()  # undos left pending (cleanup abandoned or failed)
    claims: tuple[Mapping[str, str], ...] = ()  # judged claims (connreset.experiment.claims), as JSON
    conclusions: Mapping[str, str] = attrs.field(factory=dict)  # phase → one line of words


Event = (
    RunStarted
    | PhaseStarted
    | PhaseFinished
    | StepStarted
    | StepFinished
    | StepNote
    | Progress
    | Sample
    | PodLog
    | PodStates
    | SweepProgress
    | FindingRecorded
    | NodeInfo
    | UndoRecorded
    | UndoFinished
    | WatchdogChanged
    | RunFinished
)
Subscriber = Callable[[Event], None]


class EventBus:
    """Delivers each event to every subscriber, in order. A failing subscriber is logged, not fatal."""

    def __init__(self, subscribers: list[Subscriber] | None = None) -> None:
        self._subscribers: list[Subscriber] = list(subscribers or [])

    def subscribe(self, fn: Subscriber) -> None:
        self._subscribers.append(fn)

    def emit(self, event: Event) -> None:
        for fn in self._subscribers:
            try:
                fn(event)
            except Exception:  # a broken display must not break a run that changes kernels
                log.exception("event subscriber failed", subscriber=repr(fn), event_type=type(event).__name__)
