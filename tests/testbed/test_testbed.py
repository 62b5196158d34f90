"""A testbed composes a cluster backend and a node access: capabilities, scopes, lifetime."""

from __future__ import annotations

import pytest

from connreset import BackendError, Testbed, TestbedSpec, ValidationError
from connreset.testing import MemoryCluster, MemoryNodeAccess, testbed


def test_capabilities_are_the_union_of_both_roles() -> None:
    cluster, access = MemoryCluster(), MemoryNodeAccess()
    access.capabilities = frozenset({"exec"})
    assert Testbed(cluster, access).capabilities == {"cluster", "logs", "exec"}


@pytest.mark.parametrize(("shares", "scope"), [(True, "host"), (False, "node")])
def test_machine_wide_keys_are_shared_only_when_the_nodes_share_a_kernel(shares: bool, scope: str) -> None:
    tb = testbed(shares_kernel=shares)
    assert tb.sysctl_scope("nf_conntrack_max") == scope
    assert tb.sysctl_scope("net.netfilter.nf_conntrack_buckets") == scope
    assert tb.sysctl_scope("nf_conntrack_tcp_be_liberal") == "node"


async def test_opens_cluster_then_access_and_closes_in_reverse() -> None:
    tb = testbed()
    order: list[str] = []
    tb.cluster.calls = _Log(order, "cluster")  # type: ignore[assignment]
    tb.access.calls = _Log(order, "access")  # type: ignore[assignment]
    async with tb:
        assert tb.is_open and [n.name for n in tb.nodes()] == ["node-1", "node-2"]
        with pytest.raises(BackendError, match="open already"):
            await tb.open()
    assert order == ["cluster open", "access open", "access close", "cluster close"]
    with pytest.raises(BackendError, match="not open"):
        tb.nodes()


async def test_the_cluster_is_closed_when_the_access_cannot_open() -> None:
    tb = testbed()
    tb.access.fail["open"] = BackendError("no route to node-1")

    async def failing(*args: object) -> None:
        raise BackendError("no route to node-1")

    tb.access.open = failing  # type: ignore[method-assign,assignment]
    with pytest.raises(BackendError, match="no route"):
        await tb.open()
    assert tb.cluster.closed and not tb.is_open


async def test_unknown_nodes_are_refused() -> None:
    async with testbed() as tb:
        with pytest.raises(ValidationError, match="unknown node"):
            tb.nodes(["node-9"])


def test_the_spec_keeps_options_but_not_secrets() -> None:
    spec = TestbedSpec(
        "kubernetes", "ssh", {"context": "kind-x", "token": "s3cr3t"}, {"api_key": "k", "user": "u"}
    )
    data = spec.to_json()
    assert data["cluster_options"] == {"context": "kind-x", "token": "<redacted>"}
    assert data["node_options"] == {"api_key": "<redacted>", "user": "u"}
    assert TestbedSpec.from_json(data).cluster == "kubernetes"


class _Log(list[tuple[object, ...]]):
    def __init__(self, order: list[str], who: str) -> None:
        super().__init__()
        self._order, self._who = order, who

    def append(self, item: tuple[object, ...]) -> None:
        if item[0] in ("open", "close"):
            self._order.append(f"{self._who} {item[0]}")
        super().append(item)
