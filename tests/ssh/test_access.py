"""The ssh node access against real OpenSSH sshd, each node a ``crssh-*`` network namespace.

Nothing here touches the lab or a sysctl of the machine's own namespace: every write goes to
``nf_conntrack_tcp_be_liberal`` inside a namespace the test created.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from connreset import (
    AuthFailed,
    BackendError,
    Experiment,
    HostKeyRefused,
    SetSysctl,
    TimedOut,
    ToolMissing,
    Unreachable,
    run,
)
from connreset.kernel import conntrack
from connreset.kernel.node import Rule
from connreset.ssh import SshNodeAccess
from connreset.testbed import NodeInfo, Testbed
from connreset.testing import MemoryCluster
from tests.ssh.sshd import SshFarm, keygen

pytestmark = [pytest.mark.root, pytest.mark.ssh]

LIBERAL = "net.netfilter.nf_conntrack_tcp_be_liberal"
NODES = [NodeInfo("node-1"), NodeInfo("node-2")]


def in_netns(ns: str, *argv: str) -> str:
    """Read something in a namespace without SSH, to check what went through it."""
    return subprocess.run(
        ["ip", "netns", "exec", ns, *argv], check=True, capture_output=True, text=True
    ).stdout


def fingerprint(pub: Path) -> str:
    return subprocess.run(
        ["ssh-keygen", "-lf", str(pub)], check=True, capture_output=True, text=True
    ).stdout.split()[1]


@pytest.fixture
async def access(farm: SshFarm) -> AsyncIterator[SshNodeAccess]:
    a = SshNodeAccess(str(farm.write_inventory()))
    await a.open(MemoryCluster(2), NODES)
    try:
        yield a
    finally:
        await a.close()


@pytest.fixture(autouse=True)
def conntrack_loaded() -> None:
    if not Path("/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal").exists():
        pytest.skip("nf_conntrack is not loaded on this machine (the tests do not load modules)")


async def test_the_kernel_verbs_over_ssh_in_the_nodes_namespace(
    access: SshNodeAccess, namespaces: list[str]
) -> None:
    machine = Path("/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal").read_text()
    one, two = access.kernel("node-1"), access.kernel("node-2")
    assert await one.read_sysctl(LIBERAL) == "0"
    await one.write_sysctl(LIBERAL, "1")
    assert await one.read_sysctl(LIBERAL) == "1"
    assert in_netns(namespaces[0], "cat", "/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal") == "1\n"
    assert await two.read_sysctl(LIBERAL) == "0", "node-2's namespace is its own"
    await one.write_sysctl(LIBERAL, "0")
    assert in_netns(namespaces[0], "cat", "/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal") == "0\n"
    assert Path("/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal").read_text() == machine

    rule = Rule("filter", "INPUT", ("-s", "198.18.99.1/32", "-j", "DROP"))
    assert await one.has_rule(rule) is False
    stats = await one.conntrack_stats()
    assert stats["entries"] == await one.conntrack_count() >= 0 and "drop" in stats and "invalid" in stats
    assert await one.kernel() == os.uname().release
    assert await one.netns_inode() == os.stat(f"/run/netns/{namespaces[0]}").st_ino
    assert await two.netns_inode() == os.stat(f"/run/netns/{namespaces[1]}").st_ino


async def test_exec_with_stdin_exit_codes_and_argv_kept_whole(access: SshNodeAccess, tmp_path: Path) -> None:
    target = tmp_path / "it's here; $(echo no)"
    await access.write_file("node-1", str(target), "line one\nline two\n")
    assert target.read_text() == "line one\nline two\n"
    assert await access.read_file("node-1", str(target)) == "line one\nline two\n"
    failed = await access.exec("node-2", ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (failed.returncode, failed.stdout, failed.stderr, failed.ok) == (3, "out\n", "err\n", False)
    with pytest.raises(BackendError, match=r"node-2: cannot read /nonexistent: cat: /nonexistent"):
        await access.read_file("node-2", "/nonexistent")


async def test_one_connection_per_node_reused_for_every_command(access: SshNodeAccess, farm: SshFarm) -> None:
    kernels = [access.kernel("node-1"), access.kernel("node-2")]
    counts = await asyncio.gather(*(k.conntrack_count() for _ in range(60) for k in kernels))
    assert len(counts) == 120  # 60 at once per node: more than sshd's MaxSessions, bounded by `sessions`
    await asyncio.gather(*(k.read_sysctl(LIBERAL) for k in kernels))
    assert access.connects == 2
    assert [farm.sshd[n].accepted() for n in ("node-1", "node-2")] == [1, 1]


async def test_conntrack_counters_come_from_one_sampler_shell_per_node(
    access: SshNodeAccess, farm: SshFarm, namespaces: list[str]
) -> None:
    one = access.kernel("node-1")
    expected = conntrack.parse_stat(in_netns(namespaces[0], "cat", conntrack.STAT_PATH))
    assert await one.conntrack_stats() == expected  # an idle namespace: its counters stand still
    sampler = access._samplers["node-1"]
    counts = [await one.conntrack_count() for _ in range(50)]
    assert counts == [expected["entries"]] * 50
    assert access._samplers["node-1"] is sampler, "the same shell answered every sample"
    sampler.close()  # a sampler that died is started again on the next sample
    await sampler.wait_closed()
    assert await one.conntrack_count() == expected["entries"]
    assert access._samplers["node-1"] is not sampler
    assert farm.sshd["node-1"].accepted() == 1


async def test_host_true_is_the_login_namespace_unless_a_host_prefix_says_otherwise(
    farm: SshFarm, namespaces: list[str]
) -> None:
    plain = SshNodeAccess(str(farm.write_inventory(farm.root / "plain.toml")))
    prefixed = SshNodeAccess(
        str(farm.write_inventory(farm.root / "prefixed.toml", host_prefix=farm.machine_prefix))
    )
    readlink = ["readlink", "/proc/self/ns/net"]
    for a in (plain, prefixed):
        await a.open(MemoryCluster(2), NODES)
    try:
        node = f"net:[{os.stat(f'/run/netns/{namespaces[0]}').st_ino}]\n"
        assert (await plain.exec("node-1", readlink, host=True)).stdout == node
        assert (await prefixed.exec("node-1", readlink)).stdout == node
        machine = os.readlink("/proc/self/ns/net") + "\n"
        assert (await prefixed.exec("node-1", readlink, host=True)).stdout == machine
    finally:
        await plain.close()
        await prefixed.close()


async def test_a_changed_host_key_is_refused_with_its_fingerprint_and_nothing_runs(
    farm: SshFarm, namespaces: list[str]
) -> None:
    other = keygen(farm.root / "other_host_key")
    farm.write_known_hosts(replace={"node-2": other})
    access = SshNodeAccess(str(farm.write_inventory()))
    with pytest.raises(HostKeyRefused) as err:
        await access.open(MemoryCluster(2), NODES)
    assert err.value.node == "node-2"
    message = str(err.value)
    real = fingerprint(Path(f"{farm.sshd['node-2'].host_key}.pub"))
    assert message.startswith(f"node-2: the host key of [127.0.0.1]:{farm.sshd['node-2'].port} has CHANGED")
    assert f"ssh-ed25519 {real}" in message and "refused, nothing was run" in message
    assert "\n" not in message
    assert farm.sshd["node-2"].accepted() == 0, "no login on the node whose key changed"
    assert access._conns == {}, "node-1's connection was closed again"
    with pytest.raises(BackendError, match="not open"):
        await access.exec("node-1", ["true"])


async def test_an_unknown_host_key_is_refused_with_its_fingerprint(farm: SshFarm) -> None:
    farm.write_known_hosts(replace={"node-1": None})
    access = SshNodeAccess(str(farm.write_inventory(nodes=["node-1"])))
    with pytest.raises(HostKeyRefused) as err:
        await access.open(MemoryCluster(1), [NodeInfo("node-1")])
    real = fingerprint(Path(f"{farm.sshd['node-1'].host_key}.pub"))
    assert f"node-1: the host key of [127.0.0.1]:{farm.sshd['node-1'].port} is unknown" in str(err.value)
    assert real in str(err.value)
    assert farm.sshd["node-1"].accepted() == 0


async def test_a_run_on_a_node_with_a_changed_host_key_changes_nothing_anywhere(
    farm: SshFarm, namespaces: list[str], tmp_path: Path
) -> None:
    farm.write_known_hosts(replace={"node-2": keygen(farm.root / "other")})
    testbed = Testbed(MemoryCluster(2), SshNodeAccess(str(farm.write_inventory())))
    with pytest.raises(HostKeyRefused, match=r"node-2: the host key .* has CHANGED") as err:
        await run(Experiment.single("liberal", SetSysctl(LIBERAL, 1)), testbed, journal=tmp_path / "j.json")
    assert err.value.exit_code == 3
    for ns in namespaces:
        assert in_netns(ns, "cat", "/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal") == "0\n"


async def test_an_authentication_failure_names_the_node_and_the_key(farm: SshFarm) -> None:
    stranger = keygen(farm.root / "stranger")
    path = farm.write_inventory(overrides={"node-2": {"key": str(stranger)}})
    access = SshNodeAccess(str(path))
    with pytest.raises(AuthFailed) as err:
        await access.open(MemoryCluster(2), NODES)
    assert err.value.node == "node-2"
    assert str(err.value) == (
        f"node-2: SSH authentication failed for root@127.0.0.1:{farm.sshd['node-2'].port} with {stranger}; "
        "check the user, that the key's public half is in that user's authorized_keys on the node, "
        "and the key itself"
    )
    assert farm.sshd["node-2"].accepted() == 0


async def test_an_unreachable_host_names_the_node(farm: SshFarm) -> None:
    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        path = farm.write_inventory(overrides={"node-1": {"port": port}})
        with pytest.raises(Unreachable) as err:
            await SshNodeAccess(str(path)).open(MemoryCluster(2), NODES)
    assert err.value.node == "node-1"
    assert str(err.value).startswith(
        f"node-1: cannot reach 127.0.0.1:{port}: Connection refused; check the host"
    )


async def test_a_host_that_never_answers_times_out_naming_the_node(farm: SshFarm) -> None:
    with socket.socket() as s:  # listening, so the TCP handshake completes, but nothing ever speaks SSH
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        path = farm.write_inventory(overrides={"node-2": {"port": port}})
        access = SshNodeAccess(str(path), connect_timeout="0.5")
        with pytest.raises(TimedOut) as err:
            await access.open(MemoryCluster(2), NODES)
    assert err.value.node == "node-2"
    assert str(err.value).startswith(f"node-2: no SSH session with root@127.0.0.1:{port} within 0.5 s")


async def test_a_command_that_times_out_names_the_node_and_the_connection_lives_on(
    access: SshNodeAccess, farm: SshFarm
) -> None:
    with pytest.raises(TimedOut) as err:
        await access.exec("node-1", ["sleep", "30"], timeout=0.3)
    assert err.value.node == "node-1"
    assert str(err.value).startswith("node-1: `sleep 30` did not finish within 0.3 s over SSH")
    assert (await access.exec("node-1", ["echo", "still here"])).stdout == "still here\n"
    assert farm.sshd["node-1"].accepted() == 1


async def test_a_jump_host_is_connected_once_and_shared(farm: SshFarm, namespaces: list[str]) -> None:
    access = SshNodeAccess(str(farm.write_inventory(via_jump=True)))
    await access.open(MemoryCluster(2), NODES)
    try:
        inodes = [await access.kernel(n).netns_inode() for n in ("node-1", "node-2")]
    finally:
        await access.close()
    assert inodes == [os.stat(f"/run/netns/{ns}").st_ino for ns in namespaces]
    assert farm.jump is not None and farm.jump.accepted() == 1
    assert access.connects == 3


async def test_an_experiment_through_ssh_is_applied_and_put_back(
    farm: SshFarm, namespaces: list[str], tmp_path: Path
) -> None:
    seen: list[str] = []

    testbed = Testbed(MemoryCluster(2), SshNodeAccess(str(farm.write_inventory())))
    result = await run(
        Experiment.single("liberal", SetSysctl(LIBERAL, 1)),
        testbed,
        journal=tmp_path / "journal.json",
        subscribers=[lambda e: seen.append(type(e).__name__)],
    )
    assert result.passed, result.steps
    assert sorted(u.node for u in result.undo) == ["node-1", "node-2"]
    assert all(u.status == "done" and u.verified for u in result.undo)
    for ns in namespaces:
        assert in_netns(ns, "cat", "/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal") == "0\n"
    assert [farm.sshd[n].accepted() for n in ("node-1", "node-2")] == [1, 1]


async def test_a_key_passphrase_is_used_and_never_shown(
    farm: SshFarm, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = "correct horse battery staple"
    locked = keygen(farm.root / "locked", passphrase=secret)
    farm.authorized_keys.write_text(farm.authorized_keys.read_text() + Path(f"{locked}.pub").read_text())
    monkeypatch.setenv("CRSSH_PASSPHRASE", secret)
    path = farm.write_inventory(
        nodes=["node-1"], overrides={"node-1": {"key": str(locked), "passphrase_env": "CRSSH_PASSPHRASE"}}
    )
    with capture_logs() as logs:
        access = SshNodeAccess(str(path))
        await access.open(MemoryCluster(1), [NodeInfo("node-1")])
        assert (await access.exec("node-1", ["echo", "ok"])).stdout == "ok\n"
        await access.close()
        monkeypatch.setenv("CRSSH_PASSPHRASE", "wrong")
        with pytest.raises(AuthFailed) as err:
            await SshNodeAccess(str(path)).open(MemoryCluster(1), [NodeInfo("node-1")])
    assert str(err.value).startswith(f"node-1: cannot load the SSH key {locked}")
    assert "$CRSSH_PASSPHRASE" in str(err.value) and "wrong" not in str(err.value)
    assert any(e.get("event") == "ssh connected" for e in logs)
    assert secret not in repr(logs)


@pytest.mark.skipif(shutil.which("sudo") is not None, reason="sudo is installed here")
async def test_sudo_missing_on_the_node_is_said_plainly(farm: SshFarm) -> None:
    access = SshNodeAccess(str(farm.write_inventory(sudo=True)))
    await access.open(MemoryCluster(2), NODES)
    try:
        with pytest.raises(ToolMissing) as err:
            await access.kernel("node-1").read_sysctl(LIBERAL)
    finally:
        await access.close()
    assert str(err.value).startswith("node-1: sudo is not installed on the node, but the inventory says sudo")


@pytest.mark.skipif(shutil.which("sudo") is None, reason="sudo is not installed here")
async def test_sudo_that_wants_a_password_is_said_plainly(tmp_path: Path, namespaces: list[str]) -> None:
    with SshFarm(tmp_path / "nobody", {"node-1": namespaces[0]}, run_as={"node-1": "65534"}) as farm:
        access = SshNodeAccess(str(farm.write_inventory(sudo=True)))
        await access.open(MemoryCluster(1), [NodeInfo("node-1")])
        try:
            with pytest.raises(AuthFailed) as err:
                await access.kernel("node-1").read_sysctl(LIBERAL)
        finally:
            await access.close()
    assert str(err.value).startswith("node-1: sudo needs a password for root")
