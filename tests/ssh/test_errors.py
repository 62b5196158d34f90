"""The one-line messages, for what a test on this machine cannot provoke for real."""

from __future__ import annotations

from pathlib import Path

import asyncssh
import pytest

from connreset.ssh.errors import connect_error, exec_error, sudo_error
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
