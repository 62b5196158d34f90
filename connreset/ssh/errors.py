"""Errors from asyncssh, the network and sudo, translated once into typed one-line errors.

Each message names the node and says what to check. The ``*_error`` functions make the line; the
``*_failure`` functions (and :func:`sudo_refusal`) wrap it in its type from
:mod:`connreset.errors`, all :class:`~connreset.BackendError` (exit 3), which
:mod:`connreset.ssh.access` raises. Nothing here ever sees a passphrase (keys are decrypted before
connecting, and only their paths are named).

::

    connect     PermissionDenied        AuthFailed       the user, authorized_keys, the key
                KeyImportError, OSError AuthFailed       the key cannot be read or decrypted
                HostKeyNotVerifiable    HostKeyRefused   unknown or changed: with its fingerprint
                TimeoutError            TimedOut         no SSH session within connect_timeout
                OSError, ConnectionLost Unreachable      host, port, sshd, firewalls
    exec        asyncssh.TimeoutError   TimedOut         not finished within its timeout
                DisconnectError/OSError Unreachable      the connection was lost
                ChannelOpenError        BackendError     sshd refused a session (MaxSessions)
                stderr of ``sudo -n``   AuthFailed       sudo needs a password, or is not allowed
                                        ToolMissing      sudo is not installed on the node
"""

from __future__ import annotations

import os

import asyncssh

from connreset.errors import (
    AuthFailed,
    BackendError,
    HostKeyRefused,
    TimedOut,
    ToolMissing,
    Unreachable,
)
from connreset.ssh.inventory import Endpoint, NodeEntry

__all__ = [
    "connect_error",
    "connect_failure",
    "exec_error",
    "exec_failure",
    "host_key_error",
    "host_key_refused",
    "key_failure",
    "sudo_error",
    "sudo_refusal",
]


def _via(jump: str | None) -> str:
    return f" via jump host {jump!r}" if jump else ""


def host_key_error(
    node: str, endpoint: Endpoint, offered: asyncssh.SSHKey | None, known: bool, *, jump: str | None = None
) -> str:
    """An unknown (``known`` False) or changed (True) host key, refused, with its fingerprint."""
    name = endpoint.known_hosts_name
    key = f"{offered.get_algorithm()} {offered.get_fingerprint('sha256')}" if offered else "a key"
    if known:
        return (
            f"{node}: the host key of {name}{_via(jump)} has CHANGED: it offered {key}, which is not the "
            f"key {endpoint.known_hosts} holds for it; refused, nothing was run. If the machine was "
            f"reinstalled, compare this fingerprint with `ssh-keygen -lf` of its host key on the machine "
            f"itself, then replace its line in {endpoint.known_hosts}"
        )
    return (
        f"{node}: the host key of {name}{_via(jump)} is unknown: {endpoint.known_hosts} has no entry for "
        f"it; it offered {key}; refused, nothing was run. Compare this fingerprint with `ssh-keygen -lf` "
        f"of its host key on the machine itself, then add it to {endpoint.known_hosts}"
    )


def host_key_refused(
    node: str,
    endpoint: Endpoint,
    offered: asyncssh.SSHKey | None,
    known: bool,
    *,
    jump: str | None = None,
    label: str | None = None,
) -> HostKeyRefused:
    """:func:`host_key_error` as a :class:`~connreset.HostKeyRefused` about ``node`` (``label``:
    how the message names it, e.g. the jump host it was reached through)."""
    return HostKeyRefused(host_key_error(label or node, endpoint, offered, known, jump=jump), node=node)


def _connect_type(exc: BaseException) -> type[BackendError]:
    if isinstance(exc, asyncssh.PermissionDenied | asyncssh.KeyImportError | asyncssh.KeyEncryptionError):
        return AuthFailed
    if isinstance(exc, TimeoutError):
        return TimedOut
    if isinstance(exc, OSError | asyncssh.ConnectionLost):
        return Unreachable
    return BackendError


def connect_failure(
    node: str,
    endpoint: Endpoint,
    exc: BaseException,
    *,
    timeout: float,
    jump: str | None = None,
    label: str | None = None,
) -> BackendError:
    """:func:`connect_error` as its type: AuthFailed, TimedOut, Unreachable, else BackendError."""
    message = connect_error(label or node, endpoint, exc, timeout=timeout, jump=jump)
    return _connect_type(exc)(message, node=node)


def key_failure(node: str, endpoint: Endpoint, exc: BaseException, *, label: str | None = None) -> AuthFailed:
    """The endpoint's key could not be read (an OSError) or decrypted: an AuthFailed."""
    if isinstance(exc, OSError) and not isinstance(exc, asyncssh.Error):
        reason = exc.strerror or str(exc) or type(exc).__name__
        return AuthFailed(f"{label or node}: cannot read the SSH key {endpoint.key}: {reason}", node=node)
    return AuthFailed(connect_error(label or node, endpoint, exc, timeout=0), node=node)


def connect_error(
    node: str, endpoint: Endpoint, exc: BaseException, *, timeout: float, jump: str | None = None
) -> str:
    """One line for a connection that could not be made (not a host key: see host_key_error)."""
    where = f"{endpoint.address}{_via(jump)}"
    if isinstance(exc, asyncssh.PermissionDenied):
        key = endpoint.key or "the default keys in ~/.ssh"
        return (
            f"{node}: SSH authentication failed for {where} with {key}; check the user, that the key's "
            f"public half is in that user's authorized_keys on the node, and the key itself"
        )
    if isinstance(exc, asyncssh.KeyImportError | asyncssh.KeyEncryptionError):
        about_passphrase = isinstance(exc, asyncssh.KeyEncryptionError) or "passphrase" in str(exc).lower()
        hint = (
            f" (is the passphrase in ${endpoint.passphrase_env} right?)"
            if about_passphrase and endpoint.passphrase_env
            else ""
        )
        return f"{node}: cannot load the SSH key {endpoint.key}: {exc}{hint}"
    if isinstance(exc, TimeoutError):
        return (
            f"{node}: no SSH session with {where} within {timeout:g} s; check that the host is up, that "
            f"port {endpoint.port} is sshd's, and raise connect_timeout for a slow link"
        )
    if isinstance(exc, OSError):
        reason = os.strerror(exc.errno) if exc.errno else (exc.strerror or str(exc) or type(exc).__name__)
        return (
            f"{node}: cannot reach {endpoint.host}:{endpoint.port}{_via(jump)}: {reason}; check the host "
            f"and port in the inventory, that sshd runs there, and firewalls on the way"
        )
    if isinstance(exc, asyncssh.DisconnectError):
        return f"{node}: SSH connection to {where} failed: {exc.reason}"
    return f"{node}: SSH connection to {where} failed: {type(exc).__name__}: {exc}"


def _short(command: str, limit: int = 80) -> str:
    return command if len(command) <= limit else command[: limit - 1] + "…"


def exec_error(node: str, entry: NodeEntry, command: str, exc: BaseException, *, timeout: float) -> str:
    """One line for a command that could not run to the end."""
    if isinstance(exc, TimeoutError):  # asyncssh's TimeoutError is one
        return (
            f"{node}: `{_short(command)}` did not finish within {timeout:g} s over SSH; the node may be "
            f"overloaded or the command hung (a step's timeout= raises it)"
        )
    if isinstance(exc, asyncssh.ChannelOpenError):
        return (
            f"{node}: sshd on {entry.address} refused a new session ({exc.reason}); its MaxSessions may be "
            f"lower than the access's sessions option"
        )
    if isinstance(exc, asyncssh.DisconnectError | OSError | asyncssh.ConnectionLost):
        return f"{node}: the SSH connection to {entry.address} was lost ({exc}); check that the node is up"
    return f"{node}: `{_short(command)}` failed over SSH: {type(exc).__name__}: {exc}"


def exec_failure(
    node: str, entry: NodeEntry, command: str, exc: BaseException, *, timeout: float
) -> BackendError:
    """:func:`exec_error` as its type: TimedOut, Unreachable (the connection was lost), else
    BackendError."""
    message = exec_error(node, entry, command, exc, timeout=timeout)
    if isinstance(exc, TimeoutError):
        return TimedOut(message, node=node)
    if isinstance(exc, asyncssh.DisconnectError | OSError | asyncssh.ConnectionLost):
        return Unreachable(message, node=node)
    return BackendError(message, node=node)  # e.g. ChannelOpenError: sshd refused a session


def sudo_refusal(node: str, entry: NodeEntry, returncode: int, stderr: str) -> BackendError | None:
    """:func:`sudo_error` as its type (AuthFailed, or ToolMissing when sudo is not installed), or
    None if sudo ran the command."""
    refused = _sudo(node, entry, returncode, stderr)
    return refused[0](refused[1], node=node) if refused else None


def sudo_error(node: str, entry: NodeEntry, returncode: int, stderr: str) -> str | None:
    """The message for a ``sudo -n`` that refused to run the command, or None if sudo ran it."""
    refused = _sudo(node, entry, returncode, stderr)
    return refused[1] if refused else None


def _sudo(node: str, entry: NodeEntry, returncode: int, stderr: str) -> tuple[type[BackendError], str] | None:
    user = entry.user or "the SSH user"
    first = next((line.strip() for line in stderr.splitlines() if "sudo" in line), "")
    if "a password is required" in stderr or "a terminal is required" in stderr:
        return AuthFailed, (
            f"{node}: sudo needs a password for {user} ({first!r}); allow {user} passwordless sudo "
            f"(NOPASSWD) for iptables, sysctl writes, cat, tee and dmesg, or log in as root"
        )
    if (
        "is not in the sudoers file" in stderr
        or "is not allowed to" in stderr
        or "may not run sudo" in stderr
    ):
        return AuthFailed, (
            f"{node}: {user} may not use sudo there ({first!r}); add a sudoers rule for it, or log in as root"
        )
    if returncode == 127 and ("sudo: not found" in stderr or "sudo: command not found" in stderr):
        return ToolMissing, (
            f"{node}: sudo is not installed on the node, but the inventory says sudo = true; install it, "
            f"or log in as root without sudo"
        )
    return None
