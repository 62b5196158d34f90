"""The docker node access's options and its refusal of machine-wide sysctls: no engine needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from connreset import ApplyFix, Experiment, Phase, SetSysctl, ValidationError, run
from connreset.docker import DockerNodeAccess, DockerOptions
from connreset.testbed import Testbed, TestbedSpec, registry
from connreset.testing import MemoryCluster


def test_options_parse_and_default() -> None:
    access = DockerNodeAccess(cluster="kind")
    assert access.options == DockerOptions("kind", "refuse", "docker", 60.0)
    assert access.shares_kernel is True
    assert "host-sysctl" not in access.capabilities
    allowed = DockerNodeAccess(cluster="kind", host_sysctls="allow", docker="/opt/docker", timeout="5")
    assert "host-sysctl" in allowed.capabilities
    assert allowed.options.docker == "/opt/docker" and allowed.options.timeout == 5.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "needs --node-opt cluster=NAME"),
        ({"cluster": "bad name!"}, "cluster must be a kind cluster name"),
        ({"cluster": "kind", "host_sysctls": "yes"}, "host_sysctls must be one of allow, refuse, got 'yes'"),
        ({"cluster": "kind", "timeout": "soon"}, "option timeout must be a number, got 'soon'"),
        ({"cluster": "kind", "timeout": "0"}, "timeout must be a finite number > 0"),
        ({"cluster": "kind", "docker": ""}, "docker"),
    ],
)
def test_bad_options_are_refused(options: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DockerNodeAccess(**options)


def test_unknown_option_through_the_registry() -> None:
    with pytest.raises(
        ValidationError, match=r"node access 'docker' has no option 'x' \(its options: cluster,"
    ):
        registry.build(
            TestbedSpec("connreset.testing:MemoryCluster", "docker", {}, {"cluster": "k", "x": "1"})
        )


def test_found_by_entry_point() -> None:
    tb = registry.build(TestbedSpec("connreset.testing:MemoryCluster", "docker", {}, {"cluster": "kind"}))
    assert isinstance(tb.access, DockerNodeAccess)
    assert tb.sysctl_scope("nf_conntrack_max") == "host"  # nodes share one kernel
    assert tb.sysctl_scope("nf_conntrack_tcp_be_liberal") == "node"


@pytest.mark.parametrize(
    "step", [SetSysctl("nf_conntrack_max", 1000), ApplyFix("bigger-table", max=1000, buckets=1000)]
)
async def test_machine_wide_sysctls_refused_before_anything_runs(step: object) -> None:
    cluster = MemoryCluster(2)
    testbed = Testbed(cluster, DockerNodeAccess(cluster="kind"))
    with pytest.raises(ValidationError) as info:
        await run(Experiment("x", [Phase("only", [step])]), testbed)  # type: ignore[list-item]
    text = str(info.value)
    assert "needs host-sysctl" in text
    assert "read-only inside a node's network namespace" in text
    assert "--node-opt host_sysctls=allow" in text
    assert cluster.calls == []  # not even opened


def test_cli_exits_2_and_says_how_to_allow(tmp_path: Path) -> None:
    exp = tmp_path / "max.py"
    exp.write_text(
        "from connreset import Experiment, Phase, SetSysctl\n"
        "experiment = Experiment('max', [Phase('only', [SetSysctl('nf_conntrack_max', 1000)])])\n"
    )
    cli = [sys.executable, "-m", "connreset", str(exp), "--cluster", "connreset.testing:MemoryCluster"]
    done = subprocess.run(
        [*cli, "--node-access", "docker", "--node-opt", "cluster=kind"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "host_sysctls=allow" in done.stderr
