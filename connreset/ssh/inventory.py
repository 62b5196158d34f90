"""The SSH inventory: a TOML file mapping node names to how each is logged into.

::

    [defaults]                      # optional: applied to every node and jump host
    user = "root"
    known_hosts = "~/.ssh/known_hosts"

    [jumps.bastion]                 # optional: jump hosts, by name
    host = "bastion.example.org"
    user = "ops"
    key = "~/.ssh/id_ed25519"

    [nodes.node-1]
    host = "10.0.0.11"
    port = 22
    user = "admin"
    key = "/path/to/id_ed25519"
    known_hosts = "/path/to/known_hosts"
    jump = "bastion"                # optional: reach it through [jumps.bastion]
    sudo = true                     # optional: run every argv as ``sudo -n -- ARGV``
    host_prefix = ["nsenter", "--net=/proc/1/ns/net", "--"]   # optional, see below

``host_prefix`` is the argv prefix that reaches the machine's initial network namespace when the
login does not land there (a node that is a namespace or a container); by default a node is a
whole machine and ``host=True`` runs exactly like a normal command. A key's passphrase is never
in the file: ``passphrase_env`` names an environment variable holding it. Host keys are always
checked against ``known_hosts`` (default ``~/.ssh/known_hosts``).

Every error is a :class:`connreset.ValidationError` naming the file and the node.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from connreset.errors import ValidationError

__all__ = ["Endpoint", "Inventory", "NodeEntry", "load_inventory"]

_HOST = re.compile(r"^[A-Za-z0-9._:%\[\]-]+$")  # a name or an address, nothing a shell would read
_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"


def _host(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not _HOST.match(value):
        raise ValueError(f"host must be a host name or an address, got {value!r}")


def _port(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ValueError(f"port must be an integer from 1 to 65535, got {value!r}")


def _user(instance: object, attribute: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or not _USER.match(value)):
        raise ValueError(f"user must be a user name, got {value!r}")


def _existing_file(what: str) -> Any:
    def check(instance: object, attribute: attrs.Attribute[str | None], value: str | None) -> None:
        if value is None:
            return
        if not isinstance(value, str) or not value:
            raise ValueError(f"{what} must be a path, got {value!r}")
        if not Path(value).is_file():
            raise ValueError(f"{what} {value}: no such file")

    return check


def _env_name(instance: object, attribute: attrs.Attribute[str | None], value: str | None) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not _ENV.match(value):
        raise ValueError(f"passphrase_env must name an environment variable, got {value!r}")
    if value not in os.environ:
        raise ValueError(f"passphrase_env: the environment variable {value} is not set")


def _bool(instance: object, attribute: attrs.Attribute[bool], value: bool) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{attribute.name} must be true or false, got {value!r}")


def _expand(value: object) -> object:
    return os.path.expanduser(value) if isinstance(value, str) else value


def _argv(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValueError(f"host_prefix must be a list of strings (an argv), got {value!r}")
    if not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"host_prefix must be a list of non-empty strings, got {value!r}")
    return tuple(value)


@attrs.frozen
class Endpoint:
    """How to log into one SSH server (a node, or a jump host).

    ``user`` None is the local user, as ``ssh`` does; ``key`` None tries ``~/.ssh``'s default keys.
    """

    host: str = attrs.field(validator=_host)
    port: int = attrs.field(default=22, validator=_port)
    user: str | None = attrs.field(default=None, validator=_user)
    key: str | None = attrs.field(default=None, converter=_expand, validator=_existing_file("key"))
    known_hosts: str = attrs.field(
        default=DEFAULT_KNOWN_HOSTS, converter=_expand, validator=_existing_file("known_hosts")
    )
    passphrase_env: str | None = attrs.field(default=None, validator=_env_name)
    agent: bool = attrs.field(default=False, validator=_bool)

    @property
    def address(self) -> str:
        """``user@host:port``, for messages."""
        return f"{self.user + '@' if self.user else ''}{self.host}:{self.port}"

    @property
    def known_hosts_name(self) -> str:
        """How ``known_hosts`` names this server: ``host``, or ``[host]:port`` off port 22."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


@attrs.frozen
class NodeEntry(Endpoint):
    """A node: an endpoint, plus a jump host, sudo, and how to reach the machine's own namespace."""

    name: str = attrs.field(default="", kw_only=True)
    jump: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(str)), kw_only=True
    )
    sudo: bool = attrs.field(default=False, validator=_bool, kw_only=True)
    host_prefix: tuple[str, ...] = attrs.field(default=(), converter=_argv, kw_only=True)


@attrs.frozen
class Inventory:
    """The parsed inventory: nodes and jump hosts by name, and the file they came from."""

    path: str
    nodes: Mapping[str, NodeEntry]
    jumps: Mapping[str, Endpoint] = attrs.field(factory=dict)

    def node(self, name: str) -> NodeEntry:
        try:
            return self.nodes[name]
        except KeyError:
            raise ValidationError(
                f"node {name!r} is not in the inventory (have: {', '.join(self.nodes) or 'none'})",
                file=self.path,
            ) from None


_ENDPOINT_KEYS = frozenset(a.name for a in attrs.fields(Endpoint))
_NODE_KEYS = frozenset(a.name for a in attrs.fields(NodeEntry)) - {"name"}


def _table(path: str, where: str, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError(f"{where} must be a table, got {value!r}", file=path)
    return value


def _build(
    path: str, where: str, cls: type[Any], allowed: frozenset[str], fields: dict[str, Any], **extra: Any
) -> Any:
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ValidationError(
            f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(allowed))})", file=path
        )
    if "host" not in fields:
        raise ValidationError(f"{where}: host is missing", file=path)
    try:
        return cls(**fields, **extra)
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"{where}: {exc}", file=path) from None


def load_inventory(path: str | os.PathLike[str]) -> Inventory:
    """Read and validate an inventory file.

    Args:
        path: the TOML file.

    Raises:
        ValidationError: the file is missing or not TOML, a key is unknown or invalid, a key or
            known_hosts file does not exist, a jump host is not defined; the message names the
            file and the node.
    """
    path = os.fspath(path)
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise ValidationError(f"cannot read the SSH inventory: {exc.strerror}", file=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"not valid TOML: {exc}", file=path) from None
    unknown = sorted(set(data) - {"defaults", "jumps", "nodes"})
    if unknown:
        raise ValidationError(
            f"unknown table(s) {', '.join(unknown)} (known: defaults, jumps, nodes)", file=path
        )
    defaults = _table(path, "[defaults]", data.get("defaults", {}))
    bad = sorted(set(defaults) - _NODE_KEYS - {"host"})
    if bad:
        raise ValidationError(f"[defaults]: unknown key(s) {', '.join(bad)}", file=path)
    jumps: dict[str, Endpoint] = {}
    for name, raw in _table(path, "[jumps]", data.get("jumps", {})).items():
        fields = {k: v for k, v in defaults.items() if k in _ENDPOINT_KEYS} | _table(
            path, f"jump host {name!r}", raw
        )
        jumps[name] = _build(path, f"jump host {name!r}", Endpoint, _ENDPOINT_KEYS, fields)
    nodes: dict[str, NodeEntry] = {}
    for name, raw in _table(path, "[nodes]", data.get("nodes", {})).items():
        fields = defaults | _table(path, f"node {name!r}", raw)
        entry = _build(path, f"node {name!r}", NodeEntry, _NODE_KEYS, fields, name=name)
        if entry.jump is not None and entry.jump not in jumps:
            raise ValidationError(
                f"node {name!r}: jump host {entry.jump!r} is not defined under [jumps] "
                f"(have: {', '.join(jumps) or 'none'})",
                file=path,
            )
        nodes[name] = entry
    if not nodes:
        raise ValidationError("no nodes: add a [nodes.NAME] table per node", file=path)
    return Inventory(path, nodes, jumps)
