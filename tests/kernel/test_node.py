"""The kernel verbs on the node-access test double: what each verb runs and reads."""

from __future__ import annotations

import pytest

from connreset import BackendError, NodeKernel, Rule, ValidationError
from connreset.testing import testbed

RULE = Rule("filter", "KUBE-FORWARD", ("-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP"))


async def test_sysctls_are_files_and_machine_wide_ones_are_written_in_the_initial_namespace() -> None:
    async with testbed() as tb:
        node = NodeKernel(tb.access, "node-2")
        await node.write_sysctl("nf_conntrack_tcp_be_liberal", "1")
        await node.write_sysctl("nf_conntrack_max", "1200")
        assert await node.read_sysctl("nf_conntrack_tcp_be_liberal") == "1"
    writes = [c[1:] for c in tb.access.calls if c[0] == "write_file"]
    assert writes == [
        ("node-2", "/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal", "1", False),
        ("node-2", "/proc/sys/net/netfilter/nf_conntrack_max", "1200", True),
    ]


async def test_values_are_validated_before_they_are_written() -> None:
    async with testbed() as tb:
        node = NodeKernel(tb.access, "node-1")
        with pytest.raises(ValidationError, match="0 or 1"):
            await node.write_sysctl("nf_conntrack_tcp_be_liberal", "7")
    assert not [c for c in tb.access.calls if c[0] == "write_file"]


async def test_rules_are_inserted_first_checked_and_removed() -> None:
    async with testbed() as tb:
        node = NodeKernel(tb.access, "node-1")
        await node.add_rule(RULE)
        assert await node.has_rule(RULE)
        await node.remove_rule(RULE)
        assert not await node.has_rule(RULE)
        with pytest.raises(BackendError, match=r"node-1: `iptables .* -D KUBE-FORWARD"):
            await node.remove_rule(RULE)
    argv = [c[2] for c in tb.access.calls if c[0] == "exec"]
    assert argv[0] == ("iptables", "-w", "5", "-t", "filter", "-I", "KUBE-FORWARD", "1", *RULE.args)


async def test_counters_and_kernel_version_come_from_files() -> None:
    async with testbed() as tb:
        tb.access.counters["node-1"].count = 42
        tb.access.counters["node-1"].stats["invalid"] = 3
        node = NodeKernel(tb.access, "node-1")
        assert await node.conntrack_count() == 42
        assert (await node.conntrack_stats())["invalid"] == 3
        assert await node.kernel() == "memory"
        assert await node.netns_inode() == 4026530000
