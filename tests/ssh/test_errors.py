"""The one-line messages, for what a test on this machine cannot provoke for real."""

from __future__ import annotations

from pathlib import Path

import asyncssh
import pytest

from connreset import (
    AuthFailed,
    BackendError,
    HostKeyRefused,
    TimedOut,
    ToolMissing,
    Unreachable,
)
from connreset.ssh.access import _joined
from connreset.ssh.errors import (
    connect_error,
    connect_failure,
    exec_error,
    exec_failure,
    host_key_error,
    host_key_refused,
    key_failure,
    sudo_error,
    sudo_refusal,
)
from connreset.ssh.inventory import NodeEntry


@pytest.fixture
def entry(tmp_path: Path) -> NodeEntry:
    (tmp_path / "kh").write_text("")
    return NodeEntry("10.0.0.11", 22, "admin", known_hosts=str(tmp_path / "kh"), name="node-1", sudo=True)


@pytest.mark.parametrize(
    ("code", "stderr", "words"),
    [
        (1, "sudo: a password is required\n", ["node-1: sudo needs a password for admin", "NOPASSWD"]),
        (1, "sudo: a terminal is required to read the password\n", ["sudo needs a password"]),
        (
            1,
            "admin is not in the sudoers file.  This incident will be reported.\n",
            ["admin may not use sudo"],
        ),
        (
            1,
            "Sorry, user admin is not allowed to execute '/usr/sbin/iptables' as root\n",
            ["may not use sudo"],
        ),
        (127, "sh: 1: sudo: not found\n", ["node-1: sudo is not installed on the node"]),
        (127, "bash: line 1: sudo: command not found\n", ["sudo is not installed"]),
    ],
)
def test_sudo_refusals(entry: NodeEntry, code: int, stderr: str, words: list[str]) -> None:
    message = sudo_error("node-1", entry, code, stderr)
    assert message is not None and "\n" not in message
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    ("code", "stderr"), [(1, "iptables: Bad rule (does a matching rule exist in that chain?).\n"), (2, "")]
)
def test_a_command_that_failed_under_sudo_is_not_a_sudo_refusal(
    entry: NodeEntry, code: int, stderr: str
) -> None:
    assert sudo_error("node-1", entry, code, stderr) is None


def test_connect_and_exec_messages_are_one_line_naming_the_node(entry: NodeEntry) -> None:
    lost = exec_error("node-1", entry, "cat /proc/x", asyncssh.ConnectionLost("reset"), timeout=5)
    assert lost.startswith("node-1: the SSH connection to admin@10.0.0.11:22 was lost")
    refused = connect_error("node-1", entry, ConnectionRefusedError(111, "Connection refused"), timeout=5)
    assert refused.startswith("node-1: cannot reach 10.0.0.11:22: Connection refused; check the host")
    denied = connect_error("node-1", entry, asyncssh.PermissionDenied("nope"), timeout=5)
    assert "SSH authentication failed for admin@10.0.0.11:22 with the default keys" in denied
    for message in (lost, refused, denied):
        assert "\n" not in message


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (asyncssh.PermissionDenied("nope"), AuthFailed),
        (
            asyncssh.KeyImportError("Passphrase must be specified to import encrypted private keys"),
            AuthFailed,
        ),
        (asyncssh.KeyEncryptionError("Incorrect passphrase"), AuthFailed),
        (TimeoutError(), TimedOut),
        (ConnectionRefusedError(111, "Connection refused"), Unreachable),
        (OSError(113, "No route to host"), Unreachable),
        (asyncssh.ConnectionLost("reset by peer"), Unreachable),
        (asyncssh.ProtocolError("bad packet"), BackendError),
    ],
)
def test_a_connect_failure_is_typed_and_keeps_its_line(
    entry: NodeEntry, exc: BaseException, kind: type[BackendError]
) -> None:
    failure = connect_failure("node-1", entry, exc, timeout=5)
    assert type(failure) is kind
    assert failure.node == "node-1" and failure.exit_code == 3
    assert str(failure) == connect_error("node-1", entry, exc, timeout=5)


def test_a_jump_host_failure_is_about_the_node_and_names_the_jump_host(entry: NodeEntry) -> None:
    label = "node-1 (jump host 'bastion')"
    failure = connect_failure("node-1", entry, ConnectionRefusedError(111, "x"), timeout=5, label=label)
    assert isinstance(failure, Unreachable) and failure.node == "node-1"
    assert str(failure).startswith(
        "node-1 (jump host 'bastion'): cannot reach 10.0.0.11:22: Connection refused"
    )


def test_a_key_that_cannot_be_read_is_an_auth_failure_naming_the_key(entry: NodeEntry) -> None:
    unreadable = key_failure("node-1", entry, PermissionError(13, "Permission denied"))
    assert isinstance(unreadable, AuthFailed) and unreadable.node == "node-1"
    assert str(unreadable) == f"node-1: cannot read the SSH key {entry.key}: Permission denied"
    locked = key_failure("node-1", entry, asyncssh.KeyEncryptionError("Incorrect passphrase"))
    assert isinstance(locked, AuthFailed)
    assert str(locked).startswith(f"node-1: cannot load the SSH key {entry.key}: Incorrect passphrase")


@pytest.mark.parametrize("known", [True, False])
def test_a_refused_host_key_is_typed_and_keeps_its_line(entry: NodeEntry, known: bool) -> None:
    refused = host_key_refused("node-1", entry, None, known)
    assert type(refused) is HostKeyRefused and refused.node == "node-1"
    assert str(refused) == host_key_error("node-1", entry, None, known)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (asyncssh.TimeoutError(None, "sleep 30", None, None, None, None, b"", b""), TimedOut),
        (TimeoutError(), TimedOut),
        (asyncssh.ConnectionLost("reset"), Unreachable),
        (asyncssh.DisconnectError(11, "bye"), Unreachable),
        (BrokenPipeError(32, "Broken pipe"), Unreachable),
        (asyncssh.ChannelOpenError(2, "open failed"), BackendError),
    ],
)
def test_an_exec_failure_is_typed_and_keeps_its_line(
    entry: NodeEntry, exc: BaseException, kind: type[BackendError]
) -> None:
    failure = exec_failure("node-1", entry, "cat /proc/x", exc, timeout=5)
    assert type(failure) is kind and failure.node == "node-1"
    assert str(failure) == exec_error("node-1", entry, "cat /proc/x", exc, timeout=5)


@pytest.mark.parametrize(
    ("code", "stderr", "kind"),
    [
        (1, "sudo: a password is required\n", AuthFailed),
        (1, "admin is not in the sudoers file.  This incident will be reported.\n", AuthFailed),
        (1, "Sorry, user admin is not allowed to execute '/usr/sbin/iptables' as root\n", AuthFailed),
        (127, "sh: 1: sudo: not found\n", ToolMissing),
        (127, "bash: line 1: sudo: command not found\n", ToolMissing),
    ],
)
def test_a_sudo_refusal_is_typed_and_keeps_its_line(
    entry: NodeEntry, code: int, stderr: str, kind: type[BackendError]
) -> None:
    refused = sudo_refusal("node-1", entry, code, stderr)
    assert type(refused) is kind and refused.node == "node-1"
    assert str(refused) == sudo_error("node-1", entry, code, stderr)
    assert sudo_refusal("node-1", entry, 1, "iptables: Bad rule\n") is None


def test_the_failures_of_several_nodes_keep_their_type_when_they_share_one() -> None:
    one = Unreachable("node-1: cannot reach", node="node-1")
    assert _joined([one]) is one
    both = _joined([one, Unreachable("node-2: cannot reach", node="node-2")])
    assert type(both) is Unreachable and str(both) == "node-1: cannot reach; node-2: cannot reach"
    assert both.node is None
    mixed = _joined([one, TimedOut("node-2: no SSH session", node="node-2")])
    assert type(mixed) is BackendError and str(mixed) == "node-1: cannot reach; node-2: no SSH session"
    odd = _joined([one, RuntimeError("boom")])
    assert type(odd) is BackendError and str(odd) == "node-1: cannot reach; RuntimeError: boom"
