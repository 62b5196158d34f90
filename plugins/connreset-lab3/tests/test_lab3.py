"""The example plugin's own tests, on connreset.testing's test doubles: no root, no lab."""

from __future__ import annotations

import pytest
from connreset_lab3 import ThreeNodeLab, experiment

from connreset import TestbedSpec, ValidationError, run
from connreset.experiment.checks import check_plan
from connreset.experiment.plan import build
from connreset.lab.access import LabNodeAccess
from connreset.lab.backend import LabBackend
from connreset.testbed import Testbed, registry
from connreset.testing import testbed


def test_the_entry_point_makes_a_three_node_lab_without_touching_anything() -> None:
    tb = registry.build(TestbedSpec("lab3", None, {"time_scale": "0.1"}))
    assert tb.node_names() == ["node-1", "node-2", "node-3"]
    assert isinstance(tb.cluster, ThreeNodeLab) and tb.cluster.time_scale == 0.1
    assert tb.access.name == "lab"
    with pytest.raises(ValidationError, match="time_scale"):
        ThreeNodeLab(time_scale="0")


def test_its_options_are_the_labs_with_its_own_default() -> None:
    assert registry.options_of(registry.CLUSTERS, "lab3") is ThreeNodeLab.Options
    assert ThreeNodeLab().node_count == 3 and ThreeNodeLab(nodes="4").node_count == 4
    with pytest.raises(ValidationError, match=r"has no option 'node'; did you mean 'nodes'\?"):
        ThreeNodeLab(node="4")


def test_the_experiment_fits_the_plugin_and_not_a_two_node_lab() -> None:
    plan = build(experiment)
    check_plan(plan.phases, Testbed(ThreeNodeLab(), LabNodeAccess()))
    with pytest.raises(ValidationError, match="unknown node 'node-3'"):
        check_plan(plan.phases, Testbed(LabBackend(), LabNodeAccess()))


async def test_the_experiment_runs_and_puts_everything_back_on_the_test_doubles() -> None:
    tb = testbed(nodes=3)
    result = await run(experiment, tb, params={"max_": 1024})
    assert result.passed, result.steps
    writes = [(c[1], c[2].rsplit("/", 1)[1], c[3]) for c in tb.access.calls if c[0] == "write_file"]
    assert writes[:2] == [
        ("node-3", "nf_conntrack_tcp_be_liberal", "1"),
        ("node-1", "nf_conntrack_max", "1024"),
    ]
    assert tb.access.sysctl("node-3", "nf_conntrack_tcp_be_liberal") == "0"
    assert tb.access.sysctl("node-1", "net.netfilter.nf_conntrack_max") == "262144"
    assert all(u.verified for u in result.undo)
