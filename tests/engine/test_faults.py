"""Faults hypothesis injects into runs on the test doubles (connreset.testing): a node access
that dies at any point of a run, and a step that raises at any point. Whatever the point, what
could not be put back is reported as such (never as put back), and ``connreset restore`` finishes
it once the node answers again; what could be put back was, and verified."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connreset import ApplyFix, Call, Experiment, Phase, SetSysctl, Step, StepContext, run
from connreset import events as ev
from connreset.engine.runner import RunCancelled
from connreset.errors import BackendError
from connreset.runs.journal import pending_undo, read
from connreset.runs.restore import restore
from connreset.steps.base import Graph
from connreset.testing import testbed

#: mutating steps to choose from (each a sysctl or a rule on every node)
CHANGES: list[Step] = [
    SetSysctl("nf_conntrack_max", 1200),
    SetSysctl("nf_conntrack_tcp_be_liberal", 1),
    ApplyFix("drop-invalid"),
    SetSysctl("nf_conntrack_tcp_loose", 0),
    SetSysctl("nf_conntrack_buckets", 512),
]
#: the test doubles, named again to ``restore`` (a journal's ``module:factory`` is not reopened)
MEMORY = ("connreset.testing:memory_cluster", "connreset.testing:memory_access")
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def snapshot(state: str) -> tuple[object, ...]:
    access = testbed(state=state).access
    keys = (
        "nf_conntrack_max",
        "nf_conntrack_tcp_be_liberal",
        "nf_conntrack_tcp_loose",
        "nf_conntrack_buckets",
    )
    return tuple((n, k, access.sysctl(n, k)) for n in ("node-1", "node-2") for k in keys) + tuple(
        tuple(map(tuple, access.rules(n))) for n in ("node-1", "node-2")
    )


def with_fault(changes: list[int], at: int, fault: Step) -> Graph:
    """The chosen changes, one after another, with ``fault`` inserted at position ``at``."""
    steps = [CHANGES[i] for i in changes]
    steps.insert(min(at, len(steps)), fault)
    chain: Graph = steps[0]
    for step in steps[1:]:
        chain = chain >> step
    return chain


async def _dies(ctx: StepContext) -> None:
    """From here on every call to the node access fails, as over a lost connection."""
    lost = BackendError("node-1: connection lost")
    ctx.testbed.access.fail.update(exec=lost, read_file=lost, write_file=lost)  # type: ignore[attr-defined]


async def _raises(ctx: StepContext) -> None:
    raise RuntimeError("a bug in a step")


@SETTINGS
@given(changes=st.lists(st.sampled_from(range(len(CHANGES))), min_size=1, max_size=5), at=st.integers(0, 5))
async def test_a_node_access_that_dies_mid_run_leaves_pending_what_it_could_not_put_back(
    tmp_path_factory: pytest.TempPathFactory, changes: list[int], at: int
) -> None:
    tmp = tmp_path_factory.mktemp("dies")
    state, journal = str(tmp / "nodes.json"), tmp / "j.json"
    original = snapshot(state)
    chain = with_fault(changes, at, Call(_dies))
    result = await run(
        Experiment.single("dies", chain), testbed(state=state), journal=journal, undo_timeout=5
    )

    assert result.outcome == "error" and result.exit_code == 3
    doc = read(journal)
    undone = [u for u in doc["undo"] if u["status"] == "done" and u["verified"]]
    assert undone == [], "nothing can be put back through a dead node access"
    assert len(pending_undo(doc)) == len(doc["undo"]) == len(result.pending)
    assert all(u.status == "failed" and not u.verified for u in result.undo)
    # the node answers again: restore finishes exactly what was pending
    lines, ok = await restore(journal, *MEMORY)
    assert ok, lines
    assert snapshot(state) == original


@SETTINGS
@given(changes=st.lists(st.sampled_from(range(len(CHANGES))), min_size=1, max_size=5), at=st.integers(0, 5))
async def test_a_step_that_raises_anywhere_ends_in_error_with_every_change_put_back(
    tmp_path_factory: pytest.TempPathFactory, changes: list[int], at: int
) -> None:
    tmp = tmp_path_factory.mktemp("raises")
    state, journal = str(tmp / "nodes.json"), tmp / "j.json"
    original = snapshot(state)
    chain = with_fault(changes, at, Call(_raises))
    result = await run(Experiment.single("raises", chain), testbed(state=state), journal=journal)

    assert result.outcome == "error" and result.exit_code == 3
    failed = [s for s in result.steps if s.status == "error"]
    assert [s.detail for s in failed] == ["RuntimeError: a bug in a step"]
    assert all(u.status == "done" and u.verified for u in result.undo)
    assert result.pending == () and pending_undo(read(journal)) == []
    assert snapshot(state) == original


#: three phases, the first two putting back what they changed when they end (a closing undo)
PHASES = [
    ("a", [SetSysctl("nf_conntrack_max", 1200), ApplyFix("drop-invalid")], True),
    ("b", [SetSysctl("nf_conntrack_tcp_be_liberal", 1)], True),
    ("c", [SetSysctl("nf_conntrack_tcp_loose", 0), SetSysctl("nf_conntrack_buckets", 512)], False),
]


def phased() -> Experiment:
    return Experiment(
        "phased", [Phase(name, seq(*steps), restore=restore) for name, steps, restore in PHASES]
    )


def seq(*steps: Step) -> Graph:
    chain: Graph = steps[0]
    for step in steps[1:]:
        chain = chain >> step
    return chain


async def _events_of_a_whole_run(tmp: Path) -> list[ev.Event]:
    seen: list[ev.Event] = []
    await run(phased(), testbed(state=str(tmp / "nodes.json")), subscribers=[seen.append])
    return seen


class Signals:
    """Ctrl-C at the ``at``-th event of the run (cancel its task), and optionally a second one at
    the ``again``-th (stop waiting): the CLI's two-stage handler, at moments hypothesis picks."""

    def __init__(self, task: asyncio.Task[object], at: int, again: int | None) -> None:
        self.task, self.at, self.again = task, at, again
        self.abandon = asyncio.Event()
        self.events: list[ev.Event] = []
        self.after: list[ev.Event] = []  # what the run published once the first signal had come

    def __call__(self, event: ev.Event) -> None:
        if len(self.events) >= self.at:
            self.after.append(event)
        self.events.append(event)
        if len(self.events) == self.at:
            self.task.cancel()
        if self.again is not None and len(self.events) == self.again:
            self.abandon.set()


@pytest.fixture(scope="module")
def moments(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Every event a whole run publishes, by kind (the moments to choose from)."""
    tmp = tmp_path_factory.mktemp("whole")
    return [type(e).__name__ for e in asyncio.run(_events_of_a_whole_run(tmp))]


def test_the_moments_include_every_phases_closing_undo(moments: list[str]) -> None:
    ends = [i for i, kind in enumerate(moments) if kind == "PhaseFinished"]
    starts = [i for i, kind in enumerate(moments) if kind == "PhaseStarted"]
    # between a phase's end and the next one's start: its closing undos (a: the max once for the
    # machine and a rule on each node; b: a sysctl on each node)
    assert moments[ends[0] + 1 : starts[1]] == ["UndoFinished"] * 3
    assert moments[ends[1] + 1 : starts[2]] == ["UndoFinished"] * 2


async def _signalled(tmp: Path, at: int, again: int | None) -> tuple[Signals, RunCancelled]:
    state, journal = str(tmp / "nodes.json"), tmp / "j.json"
    holder: list[Signals] = []

    async def go() -> object:
        return await run(
            phased(), testbed(state=state), journal=journal, subscribers=[lambda e: holder[0](e)],
            abandon=holder[0].abandon,
        )  # fmt: skip

    task: asyncio.Task[object] = asyncio.ensure_future(go())
    holder.append(Signals(task, at, again))
    with pytest.raises(RunCancelled) as caught:
        await task
    return holder[0], caught.value


@SETTINGS
@given(data=st.data())
async def test_a_signal_at_any_moment_closing_undos_included_stops_the_run(
    tmp_path_factory: pytest.TempPathFactory, moments: list[str], data: st.DataObject
) -> None:
    # any event before the run's end: a step, a phase's start or end, each undo of a closing one
    at = data.draw(st.integers(1, len(moments) - 1), label="at")
    tmp = tmp_path_factory.mktemp("signal")
    original = snapshot(str(tmp / "nodes.json"))
    signals, cancelled = await _signalled(tmp, at, None)

    started = [e for e in signals.after if isinstance(e, (ev.PhaseStarted, ev.UndoRecorded))]
    assert started == [], f"the run went on after the signal at {moments[at - 1]} (#{at})"
    result = cancelled.result
    assert result.cancelled and result.pending == ()
    assert all(u.status == "done" and u.verified for u in result.undo)
    assert snapshot(str(tmp / "nodes.json")) == original


@SETTINGS
@given(data=st.data())
async def test_a_second_signal_at_any_moment_stops_waiting_and_leaves_the_rest_pending(
    tmp_path_factory: pytest.TempPathFactory, moments: list[str], data: st.DataObject
) -> None:
    at = data.draw(st.integers(1, len(moments) - 2), label="at")
    again = data.draw(st.integers(at, len(moments) - 1), label="again")
    tmp = tmp_path_factory.mktemp("twice")
    state, journal = str(tmp / "nodes.json"), tmp / "j.json"
    original = snapshot(state)
    signals, cancelled = await _signalled(tmp, at, again)

    started = [e for e in signals.after if isinstance(e, (ev.PhaseStarted, ev.UndoRecorded))]
    assert started == []
    result = cancelled.result
    recorded = [e.record for e in signals.events if isinstance(e, ev.UndoRecorded)]
    put_back = [u for u in result.undo if u.status == "done" and u.verified]
    # every change is either put back and verified, or named as pending: none is lost
    assert len(put_back) + len(result.pending) == len(recorded)
    doc = read(journal)
    assert [f"{u['node']}: {u['description']}" for u in pending_undo(doc)] == list(result.pending)
    assert doc["pending"] == list(result.pending)
    lines, ok = await restore(journal, *MEMORY)
    assert ok, lines
    assert snapshot(state) == original
