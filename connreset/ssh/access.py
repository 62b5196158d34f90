"""The ``ssh`` node access: one asyncssh connection per node, reused for every command.

``--node-access ssh --node-opt inventory=FILE`` (see :mod:`connreset.ssh.inventory` and
docs/node-access.md). :meth:`SshNodeAccess.open` connects to every node of the cluster's
inventory at once (bounded by ``fanout``), checking each host key against ``known_hosts``; if any
node fails, the connections made are closed and nothing has run anywhere. Each argv is sent as
one shell-quoted command line (SSH carries a string); ``sudo = true`` prefixes ``sudo -n --``.
A node is a whole machine by default, so ``host=True`` runs like any other command, unless the
inventory gives the node a ``host_prefix``.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import warnings
from collections.abc import Sequence
from typing import Any

import attrs

with warnings.catch_warnings():  # asyncssh imports cryptography's DSA, deprecated there: not ours to say
    warnings.simplefilter("ignore", UserWarning)
    import asyncssh

from connreset._support import numbers
from connreset._support.logs import get_logger
from connreset.errors import BackendError, ValidationError
from connreset.kernel import conntrack
from connreset.kernel.node import ExecResult
from connreset.ssh import errors
from connreset.ssh.inventory import Endpoint, Inventory, load_inventory
from connreset.testbed.access import NODE_CAPABILITIES, BaseNodeAccess
from connreset.testbed.cluster import ClusterBackend, NodeInfo
from connreset.testbed.options import option

__all__ = ["SshNodeAccess"]

log = get_logger(__name__)

_END = "@@connreset-end@@"
#: A shell living on the node that prints conntrack's counters for each line it reads, with builtins
#: only: sampling at 10 Hz costs a round trip, not a process per sample.
SAMPLER = (
    f'while read -r _; do while IFS= read -r l; do printf "%s\\n" "$l"; done < {conntrack.STAT_PATH}; '
    f'echo "{_END}"; done'
)


class _Client(asyncssh.SSHClient):
    """Keeps the host key a server offered when known_hosts does not trust it (for the message)."""

    def __init__(self) -> None:
        self.refused: asyncssh.SSHKey | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.refused = key
        return False


def _positive(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    numbers.positive(attribute.name, value)


@attrs.frozen
class SshOptions:
    """The ssh node access's options (``--node-opt K=V``)."""

    inventory: str = option(help="the TOML inventory file (required; see docs/node-access.md)")
    shares_kernel: bool = option(
        False, "true when the nodes share one kernel (namespaces or containers of one machine)"
    )
    fanout: int = option(
        64, "commands in flight over all nodes, and connections being made", validator=_positive
    )
    sessions: int = option(
        8, "commands in flight on one node's connection (keep under sshd's MaxSessions)", validator=_positive
    )
    connect_timeout: float = option(
        10.0, "seconds to connect, check the host key and log in", validator=_positive
    )
    timeout: float = option(
        60.0, "seconds a command may take when its caller gives no timeout", validator=_positive
    )
    keepalive: float = option(15.0, "seconds between SSH keepalives on idle connections", validator=_positive)


class SshNodeAccess(BaseNodeAccess):
    """Node access over SSH, with asyncssh.

    Options: :class:`SshOptions`; with one session reading conntrack's counters, keep
    ``sessions`` under the node's sshd ``MaxSessions`` (10 by default).

    Raises:
        ValidationError: an option or the inventory is invalid (before anything is touched).
    """

    name = "ssh"
    runs_watchdog = True
    Options = SshOptions
    options: SshOptions

    def __init__(self, inventory: str = "", **options: object) -> None:
        if not inventory:
            raise ValidationError(
                "the ssh node access needs --node-opt inventory=FILE (see docs/node-access.md)"
            )
        super().__init__(inventory=inventory, **options)
        o = self.options
        self.inventory: Inventory = load_inventory(o.inventory)
        self.shares_kernel = o.shares_kernel
        self.fanout, self.sessions = o.fanout, o.sessions
        self.connect_timeout, self.timeout, self.keepalive = o.connect_timeout, o.timeout, o.keepalive
        self.capabilities = NODE_CAPABILITIES
        self._conns: dict[str, asyncssh.SSHClientConnection] = {}
        self._jumps: dict[str, asyncssh.SSHClientConnection] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._node_slots: dict[str, asyncio.Semaphore] = {}
        self._slots: asyncio.Semaphore | None = None
        self._samplers: dict[str, asyncssh.SSHClientProcess[str]] = {}
        self.connects = 0  # connections made (nodes and jump hosts), for tests and benchmarks

    def __repr__(self) -> str:
        return f"<SshNodeAccess {self.inventory.path} {len(self._conns)} open>"

    # -- connections ------------------------------------------------------------------------------
    async def open(self, cluster: ClusterBackend, nodes: Sequence[NodeInfo]) -> None:
        """Connect to every node (all of them must be in the inventory), or to none.

        Raises:
            ValidationError: a node of the cluster is not in the inventory.
            BackendError: a node could not be connected to; one line per failing node.
        """
        names = [n.name for n in nodes] or list(self.inventory.nodes)
        for name in names:
            self.inventory.node(name)  # raises, naming the file and the node
        self._slots = asyncio.Semaphore(self.fanout)
        self._node_slots = {name: asyncio.Semaphore(self.sessions) for name in names}
        results = await asyncio.gather(*(self._connect_node(n) for n in names), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await self.close()
            for failure in failures:
                if not isinstance(failure, Exception):
                    raise failure  # a cancellation, after closing what was made
            raise _joined(failures)

    async def close(self) -> None:
        """Close every connection (nodes first, then jump hosts), each within a few seconds."""
        conns = [*self._conns.values(), *self._jumps.values()]
        self._slots = None  # closed: exec refuses until the next open
        self._node_slots = {}
        self._samplers.clear()  # their channels close with their connections
        self._conns.clear()
        self._jumps.clear()
        for conn in conns:
            conn.close()
        for conn in conns:
            try:
                async with asyncio.timeout(5):
                    await conn.wait_closed()
            except (TimeoutError, OSError, asyncssh.Error):
                continue

    async def _connect_node(self, name: str) -> asyncssh.SSHClientConnection:
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            conn = self._conns.get(name)
            if conn is not None and not conn.is_closed():
                return conn
            if conn is not None:
                log.warning("ssh connection lost, reconnecting", node=name)
            entry = self.inventory.node(name)
            tunnel = await self._jump(name, entry.jump) if entry.jump else None
            conn = await self._connect(name, name, entry, tunnel=tunnel, jump=entry.jump)
            self._conns[name] = conn
            log.info("ssh connected", node=name, address=entry.address, jump=entry.jump)
            return conn

    async def _jump(self, node: str, jump: str) -> asyncssh.SSHClientConnection:
        """The jump host's connection, shared by every node behind it."""
        lock = self._locks.setdefault(f"jump:{jump}", asyncio.Lock())
        async with lock:
            conn = self._jumps.get(jump)
            if conn is None or conn.is_closed():
                conn = self._jumps[jump] = await self._connect(
                    node, f"{node} (jump host {jump!r})", self.inventory.jumps[jump]
                )
                log.info("ssh connected to jump host", jump=jump, address=self.inventory.jumps[jump].address)
            return conn

    def _client_keys(self, node: str, label: str, endpoint: Endpoint) -> list[asyncssh.SSHKey] | None:
        """The endpoint's key, decrypted here so that errors can name it (None: ssh's defaults).

        Raises:
            AuthFailed: the key cannot be read or decrypted.
        """
        if endpoint.key is None:
            return None
        passphrase = os.environ.get(endpoint.passphrase_env) if endpoint.passphrase_env else None
        try:
            return [asyncssh.read_private_key(endpoint.key, passphrase)]
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError, OSError) as exc:
            raise errors.key_failure(node, endpoint, exc, label=label) from None

    async def _connect(
        self,
        node: str,
        label: str,
        endpoint: Endpoint,
        *,
        tunnel: asyncssh.SSHClientConnection | None = None,
        jump: str | None = None,
    ) -> asyncssh.SSHClientConnection:
        """Connect to ``endpoint`` for ``node`` (``label``: how messages name it).

        Raises:
            HostKeyRefused, AuthFailed, TimedOut, Unreachable, BackendError: as
                :mod:`connreset.ssh.errors` translates asyncssh's and the network's errors.
        """
        assert self._slots is not None
        keys = self._client_keys(node, label, endpoint)
        client = _Client()
        async with self._slots:
            try:
                conn = await asyncssh.connect(
                    endpoint.host,
                    endpoint.port,
                    tunnel=tunnel if tunnel is not None else (),
                    config=[],  # the inventory is the whole truth: no ~/.ssh/config
                    username=endpoint.user if endpoint.user is not None else (),
                    client_keys=keys if keys is not None else (),
                    known_hosts=endpoint.known_hosts,
                    agent_path=None if not endpoint.agent else (),
                    preferred_auth="publickey",
                    client_factory=lambda: client,
                    connect_timeout=self.connect_timeout,
                    keepalive_interval=self.keepalive,
                )
            except asyncssh.HostKeyNotVerifiable:
                known = self._known(endpoint)
                raise errors.host_key_refused(
                    node, endpoint, client.refused, known, jump=jump, label=label
                ) from None
            except (OSError, asyncssh.Error) as exc:  # TimeoutError is an OSError
                raise errors.connect_failure(
                    node, endpoint, exc, timeout=self.connect_timeout, jump=jump, label=label
                ) from None
        self.connects += 1
        return conn

    @staticmethod
    def _known(endpoint: Endpoint) -> bool:
        """Whether known_hosts holds any key for the endpoint (the key changed) or none (unknown)."""
        try:
            found = asyncssh.read_known_hosts(endpoint.known_hosts).match(
                endpoint.host, endpoint.host, endpoint.port
            )
        except (OSError, ValueError):
            return False
        return bool(found[0] or found[1])

    # -- commands ---------------------------------------------------------------------------------
    def watchdog_enter(self, node: str, host: bool) -> Sequence[str] | None:
        """The watchdog runs as the commands do (``sudo`` included); the machine's own namespace
        through the node's ``host_prefix``, if it has one."""
        return list(self.inventory.node(node).host_prefix) if host else []

    def command(self, node: str, argv: Sequence[str], *, host: bool = False) -> str:
        """The command line sent for argv: the host prefix, ``sudo -n --``, every word quoted."""
        entry = self.inventory.node(node)
        full = [*(entry.host_prefix if host else ()), *argv]
        if entry.sudo:
            full = ["sudo", "-n", "--", *full]
        return shlex.join(full)

    async def exec(
        self,
        node: str,
        argv: Sequence[str],
        *,
        host: bool = False,
        stdin: bytes | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        """Run argv on the node over its connection (reconnecting once if it was lost).

        Raises:
            TimedOut: the command did not finish within its timeout.
            Unreachable: the connection was lost (and could not be made again).
            AuthFailed: sudo refused (it wants a password, or the user may not use it).
            ToolMissing: sudo is not installed on the node.
            BackendError: otherwise; each message names the node and what to check.
        """
        if not argv:
            raise BackendError(f"{node}: nothing to run (empty argv)", node=node)
        entry = self.inventory.node(node)
        command = self.command(node, argv, host=host)
        limit = timeout if timeout is not None else self.timeout
        slots, node_slots = self._slots, self._node_slots.get(node)
        if slots is None or node_slots is None:
            raise BackendError(
                f"{node}: the ssh node access is not open (or the node was not in the cluster)", node=node
            )
        conn = await self._connect_node(node)  # before taking a slot: connecting takes one too
        async with slots, node_slots:
            try:
                done = await conn.run(command, input=stdin, encoding=None, check=False, timeout=limit)
            except (OSError, asyncssh.Error) as exc:
                raise errors.exec_failure(node, entry, command, exc, timeout=limit) from None
        code = done.returncode if done.returncode is not None else 255
        out = _text(done.stdout)
        err = _text(done.stderr)
        if entry.sudo and code != 0:
            refused = errors.sudo_refusal(node, entry, code, err)
            if refused is not None:
                raise refused
        return ExecResult(tuple(argv), code, out, err)

    async def read_file(self, node: str, path: str, *, host: bool = False) -> str:
        """conntrack's counters come from the node's sampler shell; other files through ``cat``."""
        if path == conntrack.STAT_PATH and not host:
            return await self._read_stat(node)
        return await super().read_file(node, path, host=host)

    async def _read_stat(self, node: str) -> str:
        entry = self.inventory.node(node)
        command = self.command(node, ["sh", "-c", SAMPLER])
        if self._slots is None or node not in self._node_slots:
            raise BackendError(
                f"{node}: the ssh node access is not open, or the node is not in the cluster", node=node
            )
        lock = self._locks.setdefault(f"sampler:{node}", asyncio.Lock())
        async with lock:
            proc = self._samplers.get(node)
            try:
                if proc is None or proc.is_closing():
                    conn = await self._connect_node(node)
                    proc = self._samplers[node] = await conn.create_process(command, encoding="utf-8")
                return await _sample(proc, self.timeout)
            except (OSError, asyncssh.Error, asyncio.IncompleteReadError) as exc:
                failure: BaseException = exc
            self._samplers.pop(node, None)  # out of step or dead: the next sample starts another
            err = await _drain(proc)
        code = proc.returncode if proc is not None and proc.returncode is not None else 1
        refused = errors.sudo_refusal(node, entry, code, err) if entry.sudo else None
        if refused is not None:
            raise refused
        if isinstance(failure, asyncio.IncompleteReadError):
            raise BackendError(
                f"{node}: the conntrack sampler over SSH ended: {err.strip()[:200]}", node=node
            )
        raise errors.exec_failure(node, entry, command, failure, timeout=self.timeout)


def _joined(failures: Sequence[BaseException]) -> BackendError:
    """Every node's failure in one error: the one failure itself, or one line of them all, typed
    as they are when they are all of one type (e.g. every node Unreachable)."""
    if len(failures) == 1 and isinstance(failures[0], BackendError):
        return failures[0]
    lines = [str(f) if isinstance(f, BackendError) else f"{type(f).__name__}: {f}" for f in failures]
    kinds = {type(f) for f in failures}
    kind = kinds.pop() if len(kinds) == 1 else BackendError
    return (kind if issubclass(kind, BackendError) else BackendError)("; ".join(lines))


def _text(data: object) -> str:
    if isinstance(data, bytes | bytearray):
        return bytes(data).decode("utf-8", errors="replace")
    return "" if data is None else str(data)


async def _drain(proc: asyncssh.SSHClientProcess[str] | None) -> str:
    """Close a failed sampler and return what it said on stderr (within a second)."""
    if proc is None:
        return ""
    proc.close()
    try:
        async with asyncio.timeout(1):
            return await proc.stderr.read()
    except (TimeoutError, OSError, asyncssh.Error):
        return ""


async def _sample(proc: asyncssh.SSHClientProcess[str], timeout: float) -> str:
    async with asyncio.timeout(timeout):
        proc.stdin.write("\n")
        text = await proc.stdout.readuntil(_END + "\n")
    return text.removesuffix(_END + "\n")
