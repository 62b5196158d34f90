"""Find backends: entry points for built-in and third-party ones alike, or ``module:factory``.

Entry-point groups (see ``pyproject.toml``):

- ``connreset.backends``: a factory ``(**options) -> Backend``; a backend that serves both the
  cluster and the node interface (the lab) is one entry;
- ``connreset.node_backends``: node access (ssh, kubectl-debug, docker), for backends that pair a
  cluster with a separate way into the nodes.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from connreset.backends.base import Backend
from connreset.errors import ValidationError

GROUPS = ("connreset.backends", "connreset.node_backends")

BackendFactory = Callable[..., Backend]


def available(group: str = "connreset.backends") -> dict[str, EntryPoint]:
    """The installed backends of one group, by name."""
    return {ep.name: ep for ep in entry_points(group=group)}


def load(name: str) -> BackendFactory:
    """The factory named ``name``: an entry point, or a ``package.module:attribute`` path."""
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            factory: Any = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ValidationError(f"cannot load backend {name!r}: {exc}") from None
        return factory  # type: ignore[no-any-return]
    found = available()
    if name not in found:
        raise ValidationError(f"unknown backend {name!r} (installed: {', '.join(sorted(found)) or 'none'})")
    return found[name].load()  # type: ignore[no-any-return]
