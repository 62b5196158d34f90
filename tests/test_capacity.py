"""Replica counts against the cluster's capacity, refused from the plan before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from connreset import Delete, Deploy, Experiment, Phase, Scale, ValidationError, Wait, run, workloads
from connreset.engine.runner import run_on
from connreset.experiment.capacity import check_capacity
from connreset.experiment.plan import build
from connreset.lab.backend import LabBackend
from connreset.testbed import Capacity
from connreset.testing import MemoryCluster, testbed
from connreset.ui.cli import main
from tests.conftest import Touched

ROOT = Path(__file__).parent.parent
APP = workloads.command(["sleep", "1000"])
ONE_NODE = LabBackend(nodes=1).capacity()


def check(capacity: Capacity | None, *phases: Phase) -> None:
    check_capacity(Experiment("c", phases).compile(), capacity, "lab")


def test_the_lab_has_room_for_its_pod_addresses() -> None:
    assert LabBackend(nodes=1).capacity() == Capacity(1020, 1020, 1, "1 node(s) × 1020 pod addresses")
    assert LabBackend(nodes=3).capacity().pods == 3060


def test_a_scale_beyond_the_lab_is_refused_naming_the_step() -> None:
    """Issue 11: Scale(..., 100000) built the lab, then failed with "no free pod address"."""
    with pytest.raises(ValidationError) as info:
        check(
            LabBackend(nodes=2).capacity(),
            Phase("p", Deploy("app", APP) >> Scale("app", 100_000)),
        )
    assert str(info.value) == (
        "step 'scale app to 100000': 100000 replicas of app, but backend 'lab' has room for 2040 pods "
        "(2 node(s) × 1020 pod addresses)"
    )


def test_counts_that_fit_pass() -> None:
    check(ONE_NODE, Phase("p", Deploy("app", APP, replicas=1020)))
    check(None, Phase("p", Deploy("app", APP, replicas=10**6)))  # a backend that does not say


def test_a_deployment_pinned_to_a_node_has_that_nodes_room() -> None:
    two = LabBackend(nodes=2).capacity()
    check(two, Phase("p", Deploy("app", APP, replicas=1020, node="node-1")))
    with pytest.raises(ValidationError, match=r"1021 replicas of app on node-1, but a node .* room for 1020"):
        check(two, Phase("p", Deploy("app", APP, replicas=1021, node="node-1")))
    with pytest.raises(ValidationError, match=r"step 'scale app to 1500': 1500 replicas of app on node-1"):
        check(two, Phase("p", Deploy("app", APP, node="node-1")), Phase("q", Scale("app", 1500)))


def test_deployments_that_run_at_once_are_summed() -> None:
    with pytest.raises(ValidationError) as info:
        check(ONE_NODE, Phase("p", Deploy("a", APP, replicas=600) >> Deploy("b", APP, replicas=600)))
    assert "step 'deploy b': 1200 pods may run at once (a 600, b 600)" in str(info.value)
    with pytest.raises(ValidationError, match="1200 pods may run at once"):
        check(ONE_NODE, Phase("p", Deploy("a", APP, replicas=600) | Deploy("b", APP, replicas=600)))


def test_later_phases_start_from_what_earlier_ones_left() -> None:
    with pytest.raises(ValidationError, match="step 'deploy b': 1100 pods may run at once"):
        check(
            ONE_NODE, Phase("p", Deploy("a", APP, replicas=600)), Phase("q", Deploy("b", APP, replicas=500))
        )


def test_what_is_removed_in_order_before_is_not_counted() -> None:
    check(
        ONE_NODE,
        Phase(
            "p",
            Deploy("a", APP, replicas=1000)
            >> Scale("a", 10)
            >> Deploy("b", APP, replicas=1000)
            >> Delete("b")
            >> Scale("a", 1000),
        ),
    )


def test_a_scale_down_running_concurrently_with_a_scale_up_may_come_second() -> None:
    with pytest.raises(ValidationError, match="step 'deploy b': 1600 pods may run at once"):
        check(
            ONE_NODE,
            Phase("p", Deploy("a", APP, replicas=600) >> (Scale("a", 0) | Deploy("b", APP, replicas=1000))),
        )
    # ordered by after=: the scale-down is done first
    check(
        ONE_NODE,
        Phase(
            "p",
            Deploy("a", APP, replicas=600)
            >> (Scale("a", 0, name="down") | Deploy("b", APP, replicas=1000, after=("down",))),
        ),
    )


def test_a_restored_phase_gives_its_pods_back() -> None:
    first = Phase("p", Deploy("a", APP, replicas=1000) >> Wait(seconds=0), restore=True)
    check(ONE_NODE, first, Phase("q", Deploy("b", APP, replicas=1000)))
    with pytest.raises(ValidationError, match="2000 pods may run at once"):
        check(
            ONE_NODE, Phase("p", Deploy("a", APP, replicas=1000)), Phase("q", Deploy("b", APP, replicas=1000))
        )


def test_a_nodes_share_of_the_unpinned_pods_counts_on_it() -> None:
    two = LabBackend(nodes=2).capacity()
    check(two, Phase("p", Deploy("a", APP, replicas=1000, node="node-1") >> Deploy("b", APP, replicas=40)))
    with pytest.raises(ValidationError) as info:
        check(
            two, Phase("p", Deploy("a", APP, replicas=1000, node="node-1") >> Deploy("b", APP, replicas=100))
        )
    assert "1050 pods may run at once on node-1 (a 1000 and 50 of the unpinned pods)" in str(info.value)


def test_the_shipped_experiments_fit_the_default_lab() -> None:
    from connreset.experiment.loader import load

    for name in ("blog_repro", "issue_74839", "sweep_table_sizes", "sweep_boom_offset", "sweep_hash_ratio"):
        path = ROOT / "experiments" / f"{name}.py"
        if name.startswith("sweep"):
            from connreset.sweep import load_sweep

            spec, _ = load_sweep(path)
            plans = [build(spec.experiment, {**spec.fixed, **w}) for w in spec.workloads]
        else:
            plans = [load(path)]
        for plan in plans:
            check_capacity(plan.phases, LabBackend().capacity(), "lab")


async def test_run_refuses_before_opening_and_run_on_before_changing() -> None:
    tb = testbed()
    tb.cluster.max_pods = 10
    exp = Experiment.single("big", Deploy("app", APP, replicas=11))
    with pytest.raises(
        ValidationError, match="11 replicas of app, but backend 'memory' has room for 10 pods"
    ):
        await run(exp, tb)
    assert tb.cluster.calls == [] and tb.access.calls == []
    async with tb:
        with pytest.raises(ValidationError, match="11 replicas of app"):
            await run_on(tb, build(exp))
    assert not [c for c in tb.cluster.calls if c[0] in ("deploy", "scale")]


def test_the_memory_cluster_says_its_max_pods_option() -> None:
    assert MemoryCluster().capacity() is None
    assert MemoryCluster(max_pods="5").capacity() == Capacity(5, nodes=2, why="its max_pods option")
    with pytest.raises(ValidationError, match="max_pods must be >= 0"):
        MemoryCluster(max_pods="-1")


def test_the_cli_refuses_on_the_lab_without_building_it(
    tmp_path: Path, untouchable: Touched, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "scale.py"
    path.write_text(
        "from connreset import *\n"
        "app = workloads.command(['true'])\n"
        "experiment = Experiment.single('s', Deploy('app', app) >> Scale('app', 100000))\n"
    )
    assert main([str(path), "--no-tui"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"connreset: {path}:step 'scale app to 100000': 100000 replicas of app, but backend 'lab' has room "
        "for 2040 pods (2 node(s) × 1020 pod addresses)\n"
    )
    assert untouchable == []
    assert main([str(ROOT / "experiments/blog_repro.py"), "--no-tui", "--set", "steps=100000"]) == 2
    assert (
        "step 'scale simple-app to 100000': 100000 replicas of simple-app on node-1"
        in capsys.readouterr().err
    )
    assert untouchable == []
