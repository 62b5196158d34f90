"""Finding cluster backends and node accesses: entry points, or ``module:factory``.

Entry-point groups (see ``pyproject.toml``):

- ``connreset.clusters``: a factory ``(**options) -> ClusterBackend``;
- ``connreset.node_access``: a factory ``(**options) -> NodeAccess``.

Built-in and third-party ones load the same way. Options arrive as strings, as typed on the
command line; a backend derived from :class:`~connreset.testbed.BaseClusterBackend` or
:class:`~connreset.testbed.BaseNodeAccess` declares them in its ``Options`` class and parses them
with :func:`connreset.testbed.options.parse`, raising ValidationError before touching anything.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import attrs

from connreset._support.redact import redact
from connreset._support.suggest import hint
from connreset.errors import ConnresetError, ValidationError
from connreset.testbed.access import NodeAccess
from connreset.testbed.cluster import ClusterBackend
from connreset.testbed.testbed import Testbed, TestbedSpec

CLUSTERS = "connreset.clusters"
NODE_ACCESS = "connreset.node_access"
GROUPS = {CLUSTERS: "cluster backend", NODE_ACCESS: "node access"}


def available(group: str) -> dict[str, EntryPoint]:
    """The installed plugins of one group, by name."""
    return {ep.name: ep for ep in entry_points(group=group)}


def load(group: str, name: str) -> Callable[..., Any]:
    """The factory named ``name`` in ``group``: an entry point, or a ``package.module:attr`` path."""
    what = GROUPS[group]
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            factory: Callable[..., Any] = getattr(importlib.import_module(module), attr)
        except (Exception, SystemExit) as exc:  # its import may raise anything, even exit
            raise ValidationError(f"cannot load {what} {name!r}: {_said(exc)}") from None
        if not callable(factory):
            raise ValidationError(f"cannot load {what} {name!r}: it is not a factory")
        return factory
    found = available(group)
    if name not in found:
        raise ValidationError(
            f"unknown {what} {name!r} (installed: {', '.join(sorted(found)) or 'none'}){hint(name, found)}"
        )
    loaded: Callable[..., Any] = found[name].load()
    return loaded


def options_of(group: str, name: str) -> type | None:
    """The options class a plugin declares (None: a plain factory that declares none)."""
    factory = load(group, name)
    declared = getattr(factory, "Options", None)  # a class attribute of the plugin's class
    return declared if isinstance(declared, type) and attrs.has(declared) else None


def _said(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _make(group: str, name: str, options: Mapping[str, str]) -> Any:
    factory = load(group, name)
    try:
        made = factory(**options)
    except (TypeError, ValueError) as exc:  # a factory's own refusal is a ValidationError already
        raise ValidationError(f"{GROUPS[group]} {name!r} options {redact(options)}: {exc}") from None
    except ConnresetError:
        raise
    except (Exception, SystemExit) as exc:  # module:factory can name anything
        raise ValidationError(f"{GROUPS[group]} {name!r} failed: {_said(exc)}") from None
    role = ClusterBackend if group == CLUSTERS else NodeAccess
    if not isinstance(made, role):
        raise ValidationError(f"{name!r} made a {type(made).__name__}, not a {GROUPS[group]}")
    return made


def build(spec: TestbedSpec) -> Testbed:
    """Build (not open) the testbed a spec names; the node access defaults to the cluster's own."""
    cluster = _make(CLUSTERS, spec.cluster, spec.cluster_options)
    access_name = spec.node_access or cluster.default_node_access
    access = _make(NODE_ACCESS, access_name, spec.node_options)
    return Testbed(
        cluster, access, TestbedSpec(spec.cluster, access_name, spec.cluster_options, spec.node_options)
    )
