"""Faults hypothesis injects into runs on the test doubles (connreset.testing): a node access
that dies at any point of a run, and a step that raises at any point. Whatever the point, what
could not be put back is reported as such (never as put back), and ``connreset restore`` finishes
it once the node answers again; what could be put back was, and verified."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connreset import ApplyFix, Call, Experiment, SetSysctl, Step, StepContext, run
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
    lines, ok = await restore(journal)
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
