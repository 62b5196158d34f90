"""Real OpenSSH servers for tests and benchmarks: one ``sshd`` per node, each entering a namespace.

Each sshd listens on 127.0.0.1 on a free port, runs from a directory of its own (config, host key,
log), and has a ``ForceCommand`` that runs the client's command line in the node's network
namespace::

    exec nsenter --net=/run/netns/NS -- sh -c "$SSH_ORIGINAL_COMMAND"

so each sshd *is* a node to :class:`connreset.ssh.SshNodeAccess`. The namespace is a parameter:
tests use ``crssh-*`` namespaces they create; the lab's acceptance run points the same farm at the
lab's ``crlab-node-N`` namespaces. ::

    with SshFarm(tmp, {"node-1": "crssh-a", "node-2": "crssh-b"}) as farm:
        inventory = farm.write_inventory()
        access = SshNodeAccess(inventory)

Readiness is waited for on sshd's own "Server listening" line, then confirmed by connecting and
reading its banner; nothing sleeps. :meth:`SshFarm.stop` stops each sshd by its PID (the process
group it was started in), never by name. A connection's own sshd child (in a session of its own)
ends when the client disconnects: close the access before stopping the farm.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.netns import Namespaces
from tests.processes import stop_group

SSHD = "/usr/sbin/sshd"
_NS = re.compile(r"^[A-Za-z0-9_.-]+$")
_LISTENING = re.compile(r"Server listening on 127\.0\.0\.1 port (\d+)")


def have_sshd() -> bool:
    return Path(SSHD).is_file() and shutil.which("ssh-keygen") is not None


def keygen(path: Path, *, passphrase: str = "") -> Path:
    """An ed25519 key pair at ``path`` and ``path.pub``."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "connreset-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def public(path: Path) -> str:
    """``ssh-ed25519 AAAA...`` of a key pair (without the comment)."""
    return " ".join(Path(f"{path}.pub").read_text().split()[:2])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def force_command(namespace: str | None, run_as: str | None = None) -> str:
    """The ForceCommand: the client's command line, in the namespace (and as ``run_as``)."""
    words: list[str] = []
    if namespace is not None:
        if not _NS.match(namespace):
            raise ValueError(f"not a namespace name: {namespace!r}")
        words += ["/usr/bin/nsenter", f"--net=/run/netns/{namespace}", "--"]
    if run_as is not None:
        words += ["setpriv", f"--reuid={run_as}", f"--regid={run_as}", "--clear-groups", "--"]
    # the client's line is only ever an argument of sh -c, in double quotes: never re-parsed here
    return f'exec {shlex.join([*words, "/bin/sh", "-c"])} "$SSH_ORIGINAL_COMMAND"'


class Sshd:
    """One sshd: its port, directory, host key, process, and the lines it logged."""

    def __init__(self, name: str, root: Path, namespace: str | None, run_as: str | None = None) -> None:
        self.name = name
        self.namespace = namespace
        self.run_as = run_as
        self.dir = root / f"sshd-{name}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host_key = self.dir / "host_ed25519"
        self.port = 0
        self.process: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    def configure(self, authorized_keys: Path, *, forwarding: bool = False) -> None:
        if not self.host_key.exists():
            keygen(self.host_key)
        self.port = free_port()
        lines = [
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {self.host_key}",
            "PidFile none",
            f"AuthorizedKeysFile {authorized_keys}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "PrintMotd no",
            "MaxStartups 200",
            "MaxSessions 20",
            "LogLevel INFO",
            f"AllowTcpForwarding {'yes' if forwarding else 'no'}",
            # Debian's bash sources ~/.bashrc for every command sshd runs through it, unless it
            # believes it is a nested shell: this machine's user profile is not the node's kernel
            "SetEnv SHLVL=1",
        ]
        if self.namespace is not None or self.run_as is not None:
            lines.append(f"ForceCommand {force_command(self.namespace, self.run_as)}")
        (self.dir / "sshd_config").write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        self._ready.clear()
        self.lines = []
        self.process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.dir / "sshd_config")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # a process group of its own, signalled by its PID
        )
        self._reader = threading.Thread(target=self._read, name=f"sshd-{self.name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            if _LISTENING.search(line):
                self._ready.set()
        self._ready.set()  # it exited: wait_ready sees that

    def wait_ready(self, deadline: float = 15.0) -> None:
        """Wait for "Server listening", then connect and read the SSH banner."""
        assert self.process is not None
        if not self._ready.wait(deadline) or self.process.poll() is not None:
            raise RuntimeError(f"sshd {self.name} did not start: {' | '.join(self.lines[-5:])}")
        with socket.create_connection(("127.0.0.1", self.port), timeout=deadline) as s:
            banner = s.makefile("rb").readline()
        if not banner.startswith(b"SSH-2.0-"):
            raise RuntimeError(f"sshd {self.name} on port {self.port} answered {banner[:40]!r}")

    def accepted(self) -> int:
        """Logins sshd accepted so far (one per SSH connection)."""
        return sum("Accepted publickey" in line for line in self.lines)

    def stop(self) -> None:
        """SIGTERM to its process group (by PID), then SIGKILL if it lingers."""
        process, self.process = self.process, None
        if process is None:
            return
        stop_group(process, 5)
        if self._reader is not None:
            self._reader.join(5)


class SshFarm:
    """Many sshd on loopback, one per node, with one user key, a known_hosts and an inventory.

    Args:
        root: a directory of the farm's own (a temp dir).
        nodes: node name → the network namespace its commands run in (None: no ForceCommand).
        run_as: node name → a user id the node's commands run as (e.g. ``65534``, nobody).
        jump: also start an sshd named ``jump`` with TCP forwarding, usable as a jump host.
    """

    def __init__(
        self,
        root: Path,
        nodes: Mapping[str, str | None],
        *,
        run_as: Mapping[str, str] | None = None,
        jump: bool = False,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        run_as = run_as or {}
        self.sshd = {name: Sshd(name, self.root, ns, run_as.get(name)) for name, ns in nodes.items()}
        self.jump = Sshd("jump", self.root, None) if jump else None
        self.key = self.root / "id_ed25519"
        self.authorized_keys = self.root / "authorized_keys"
        self.known_hosts = self.root / "known_hosts"

    @property
    def machine_prefix(self) -> tuple[str, ...]:
        """A ``host_prefix`` reaching this machine's network namespace from a node's: the one this
        process (and every sshd listener) lives in. (``/proc/1/ns/net`` would do on a plain
        machine, but not in a container whose PID 1 we may not enter.)"""
        return ("nsenter", f"--net=/proc/{os.getpid()}/ns/net", "--")

    def _all(self) -> list[Sshd]:
        return [*self.sshd.values(), *([self.jump] if self.jump else [])]

    def start(self) -> SshFarm:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        if not self.key.exists():
            keygen(self.key)
        self.authorized_keys.write_text(public(self.key) + "\n")
        for attempt in range(3):
            pending = [s for s in self._all() if s.process is None]
            for s in pending:
                s.configure(self.authorized_keys, forwarding=s is self.jump)
                s.start()
            failed = []
            for s in pending:
                try:
                    s.wait_ready()
                except (RuntimeError, OSError):
                    s.stop()
                    failed.append(s)
            if not failed:
                break
            if attempt == 2 or not all("Bind to port" in " ".join(s.lines) for s in failed):
                self.stop()
                raise RuntimeError("; ".join(f"{s.name}: {' | '.join(s.lines[-3:])}" for s in failed))
        self.write_known_hosts()
        return self

    def stop(self) -> None:
        for s in self._all():
            s.stop()

    def __enter__(self) -> SshFarm:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def known_hosts_line(self, s: Sshd, key: Path | None = None) -> str:
        return f"[127.0.0.1]:{s.port} {public(key or s.host_key)}"

    def write_known_hosts(self, replace: Mapping[str, Path | None] | None = None) -> None:
        """known_hosts for every sshd; ``replace`` maps a node to another key (a changed host key)
        or to None (an unknown host: no line)."""
        replace = replace or {}
        lines = [
            self.known_hosts_line(s, replace[s.name]) if s.name in replace else self.known_hosts_line(s)
            for s in self._all()
            if not (s.name in replace and replace[s.name] is None)
        ]
        self.known_hosts.write_text("\n".join(lines) + "\n")

    def write_inventory(
        self,
        path: Path | None = None,
        *,
        nodes: Sequence[str] | None = None,
        sudo: bool = False,
        host_prefix: Sequence[str] | None = None,
        via_jump: bool = False,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Path:
        """An inventory TOML for the nodes (all by default); ``overrides`` changes a node's keys."""
        path = path or self.root / "inventory.toml"
        overrides = overrides or {}
        out = ["[defaults]", f"user = {_toml('root')}", f"key = {_toml(str(self.key))}"]
        out.append(f"known_hosts = {_toml(str(self.known_hosts))}")
        if via_jump:
            assert self.jump is not None
            out += ["", "[jumps.jump]", f"host = {_toml('127.0.0.1')}", f"port = {self.jump.port}"]
        for name in nodes if nodes is not None else list(self.sshd):
            s = self.sshd[name]
            fields: dict[str, Any] = {"host": "127.0.0.1", "port": s.port}
            if sudo:
                fields["sudo"] = True
            if host_prefix is not None:
                fields["host_prefix"] = list(host_prefix)
            if via_jump:
                fields["jump"] = "jump"
            fields.update(overrides.get(name, {}))
            out += ["", f"[nodes.{_toml(name)}]", *(f"{k} = {_toml(v)}" for k, v in fields.items())]
        path.write_text("\n".join(out) + "\n")
        return path


def _toml(value: Any) -> str:
    """A TOML value for the simple types an inventory holds."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


_OURS = Namespaces("crssh-")
add_netns, delete_netns = _OURS.add, _OURS.delete


def test_namespaces() -> list[str]:
    """The ``crssh-*`` namespaces that exist now."""
    return _OURS.existing()


test_namespaces.__test__ = False  # type: ignore[attr-defined]
