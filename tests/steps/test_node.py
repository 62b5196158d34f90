"""Node steps on the test doubles: what Observe and AssertTableFull conclude from the counters."""

from __future__ import annotations

import asyncio

import pytest

from connreset import ApplyFix, AssertTableFull, Call, Experiment, Observe, SetSysctl, StepContext, run
from connreset.testing import testbed


async def test_observe_records_peak_max_and_counter_growth() -> None:
    tb = testbed()
    n1, n2 = tb.access.counters["node-1"], tb.access.counters["node-2"]
    n1.count, n2.count = 7, 3

    sampling = asyncio.Event()

    async def grow(ctx: StepContext) -> None:
        await sampling.wait()  # Observe has read its baseline and taken a first sample
        n1.stats["drop"] = n1.stats.get("drop", 0) + 5
        n1.count = 9

    def on(event: object) -> None:
        if type(event).__name__ == "Sample":
            sampling.set()

    exp = Experiment.single("o", Observe(0.3, every=0.05) | Call(grow))
    result = await run(exp, tb, subscribers=[on])
    found = result.findings["main"]
    assert found["count_peak"] == {"node-1": 9, "node-2": 3}
    assert found["max"] == 262144
    assert found["drop"] == {"node-1": 5, "node-2": 0}


@pytest.mark.parametrize(("count", "dropped", "full"), [(50, 1, True), (50, 0, False), (49, 3, False)])
async def test_table_full_needs_the_count_at_max_and_drops(count: int, dropped: int, full: bool) -> None:
    tb = testbed()
    node = tb.access.counters["node-1"]

    async def load(ctx: StepContext) -> None:
        node.count = count
        node.dropping = dropped

    exp = Experiment.single(
        "f", SetSysctl("nf_conntrack_max", 50) >> Call(load) >> AssertTableFull(within=0.3, expect=None)
    )
    result = await run(exp, tb)
    assert result.findings["main"]["table_full"] is full


async def test_refuting_a_full_table_fails_when_it_is_full() -> None:
    tb = testbed()
    node = tb.access.counters["node-1"]
    node.count = 262144

    async def drop(ctx: StepContext) -> None:
        node.dropping = 1

    exp = Experiment.single("r", Call(drop) >> AssertTableFull(within=0.3, expect=False))
    result = await run(exp, tb)
    assert result.outcome == "failed"
    assert "node-1: count 262144 ≥ max 262144" in result.steps[-1].detail


async def test_host_global_key_is_written_once_and_said_so() -> None:
    tb = testbed(nodes=3)
    notes: list[str] = []
    exp = Experiment.single("g", SetSysctl("nf_conntrack_max", 1200))
    await run(
        exp,
        tb,
        subscribers=[lambda e: notes.append(e.message) if type(e).__name__ == "StepNote" else None],
    )
    writes = [c for c in tb.access.calls if c[0] == "write_file"]
    assert len(writes) == 2  # the change, and its undo
    assert all(c[4] is True for c in writes)  # in the kernel's initial namespace
    assert any("host-global" in n for n in notes)


async def test_nodes_with_kernels_of_their_own_are_each_written_and_read() -> None:
    """Over SSH to VMs every node has its own nf_conntrack_max: set on each, limits per node."""
    tb = testbed(nodes=2, shares_kernel=False)
    tb.access.counters["node-2"].count = 100
    tb.access.counters["node-2"].dropping = 1

    async def lower_node_2_only(ctx: StepContext) -> None:
        await ctx.set_sysctl(ctx.nodes(["node-2"])[0], "net.netfilter.nf_conntrack_max", "100")

    exp = Experiment.single(
        "own",
        SetSysctl("nf_conntrack_max", 5000)
        >> Call(lower_node_2_only)
        >> Observe(0.1)
        >> AssertTableFull(within=0.3),
    )
    result = await run(exp, tb)
    assert result.passed, result.steps
    writes = [c for c in tb.access.calls if c[0] == "write_file" and c[3] == "5000"]
    assert sorted(c[1] for c in writes[:2]) == ["node-1", "node-2"]  # then node-2 undone to 5000
    assert result.findings["main"]["max"] == {"node-1": 5000, "node-2": 100}
    assert "node-2: count 100 ≥ max 100" in result.steps[-1].detail
    assert tb.access.sysctl("node-1", "nf_conntrack_max") == tb.access.sysctl("node-2", "nf_conntrack_max")


async def test_the_drop_invalid_fix_leaves_a_rule_already_there_as_it_was() -> None:
    """kube-proxy installs the same rule itself: the fix must not add a copy, nor remove its own."""
    tb = testbed()
    rule = ["filter", "KUBE-FORWARD", "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP"]
    tb.access.rules("node-1").append(list(rule))
    result = await run(Experiment.single("fix", ApplyFix("drop-invalid")), tb)
    assert result.outcome == "passed"
    assert result.steps[0].detail.endswith("(1 had it already: left as it was)")
    assert [u.node for u in result.undo] == ["node-2"]  # only the rule this run added is undone
    assert tb.access.rules("node-1") == [rule] and tb.access.rules("node-2") == []
