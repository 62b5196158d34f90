"""Finding cluster backends and node accesses: entry points, and module:factory for the rest."""

from __future__ import annotations

import pytest

from connreset import TestbedSpec, ValidationError, testing
from connreset.lab.access import LabNodeAccess
from connreset.lab.backend import LabBackend
from connreset.testbed.registry import CLUSTERS, NODE_ACCESS, available, build, load


def test_the_lab_is_an_entry_point_in_each_group() -> None:
    assert load(CLUSTERS, "lab") is LabBackend
    assert load(NODE_ACCESS, "lab") is LabNodeAccess
    assert available(CLUSTERS)["lab"].dist is not None


def test_the_node_access_defaults_to_the_clusters_own() -> None:
    tb = build(TestbedSpec("lab", None, {"nodes": "3"}))
    assert isinstance(tb.cluster, LabBackend) and isinstance(tb.access, LabNodeAccess)
    assert tb.spec.node_access == "lab" and tb.name == "lab"
    assert tb.node_names() == ["node-1", "node-2", "node-3"]


def test_module_paths_load_factories() -> None:
    assert load(CLUSTERS, "connreset.testing:memory_cluster") is testing.memory_cluster
    tb = build(TestbedSpec("connreset.testing:memory_cluster", None, {"nodes": "4"}))
    assert isinstance(tb.access, testing.MemoryNodeAccess)  # the double cluster's own default
    assert tb.node_names() == ["node-1", "node-2", "node-3", "node-4"]


@pytest.mark.parametrize(
    ("group", "name", "message"),
    [
        (CLUSTERS, "nope", "unknown cluster backend 'nope'"),
        (NODE_ACCESS, "nope", "unknown node access 'nope'"),
        (CLUSTERS, "connreset.testing:nothing", "cannot load cluster backend"),
        (NODE_ACCESS, "no.such.module:x", "cannot load node access"),
    ],
)
def test_unknown_names_are_validation_errors(group: str, name: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        load(group, name)


def test_lab_options_are_validated_before_anything_happens() -> None:
    with pytest.raises(ValidationError, match="nodes must be"):
        LabBackend(nodes=0)
    with pytest.raises(ValidationError, match="time_scale"):
        LabBackend(time_scale="-1")
    with pytest.raises(ValidationError, match="options"):
        build(TestbedSpec("lab", None, {"colour": "red"}))
