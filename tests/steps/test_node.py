"""Node steps on the test double: what Observe and AssertTableFull conclude from the counters."""

from __future__ import annotations

import asyncio

import pytest

from connreset import AssertTableFull, Call, Experiment, Observe, SetSysctl, StepContext, run
from tests.support import FakeBackend


async def test_observe_records_peak_max_and_counter_growth() -> None:
    backend = FakeBackend()
    n1, n2 = backend.nodes()
    n1.count, n2.count = 7, 3

    sampling = asyncio.Event()

    async def grow(ctx: StepContext) -> None:
        await sampling.wait()  # Observe has read its baseline and taken a first sample
        n1.stats["drop"] += 5
        n1.count = 9

    def on(event: object) -> None:
        if type(event).__name__ == "Sample":
            sampling.set()

    exp = Experiment.single("o", Observe(0.3, every=0.05) | Call(grow))
    result = await run(exp, backend, subscribers=[on])
    found = result.findings["main"]
    assert found["count_peak"] == {"node-1": 9, "node-2": 3}
    assert found["max"] == 262144
    assert found["drop"] == {"node-1": 5, "node-2": 0}


@pytest.mark.parametrize(("count", "dropped", "full"), [(50, 1, True), (50, 0, False), (49, 3, False)])
async def test_table_full_needs_the_count_at_max_and_drops(count: int, dropped: int, full: bool) -> None:
    backend = FakeBackend()
    node = backend.nodes()[0]

    async def load(ctx: StepContext) -> None:
        node.count = count
        node.dropping = dropped

    exp = Experiment.single(
        "f", SetSysctl("nf_conntrack_max", 50) >> Call(load) >> AssertTableFull(within=0.3, expect=None)
    )
    result = await run(exp, backend)
    assert result.findings["main"]["table_full"] is full


async def test_refuting_a_full_table_fails_when_it_is_full() -> None:
    backend = FakeBackend()
    node = backend.nodes()[0]
    node.count, node.stats["drop"] = 262144, 0

    async def drop(ctx: StepContext) -> None:
        node.dropping = 1

    exp = Experiment.single("r", Call(drop) >> AssertTableFull(within=0.3, expect=False))
    result = await run(exp, backend)
    assert result.outcome == "failed"
    assert "≥ max 262144" in result.steps[-1].detail


async def test_host_global_key_is_written_once_and_said_so() -> None:
    backend = FakeBackend(nodes=3)
    notes: list[str] = []
    exp = Experiment.single("g", SetSysctl("nf_conntrack_max", 1200))
    await run(
        exp,
        backend,
        subscribers=[lambda e: notes.append(e.message) if type(e).__name__ == "StepNote" else None],
    )
    writes = [c for c in backend.calls if c[0] == "write_sysctl"]
    assert len(writes) == 2  # the change, and its undo
    assert any("host-global" in n for n in notes)
