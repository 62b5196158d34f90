"""The one exception tree of connreset.

::

    ConnresetError
    ├── ValidationError        invalid input; nothing touched a node (exit 2)
    ├── ExpectationFailed      an assertion about the system did not hold (exit 1)
    └── BackendError           the infrastructure failed us (exit 3)
        ├── Unreachable        a node, or the engine it lives in, cannot be reached, or was lost
        ├── TimedOut           a connection or a command did not finish within its deadline
        ├── AuthFailed         the node refused who we are or what we may do: login, key, sudo
        ├── HostKeyRefused     a node's SSH host key is unknown or changed: refused, nothing ran
        ├── ToolMissing        a program connreset needs is not installed (the docker CLI, sudo)
        ├── NodeUnavailable    a node is not there or not running (its container gone or stopped)
        └── JournalError       an undo could not be written to disk, so its change was not made

The node accesses translate what fails below them (asyncssh, the network, ``sudo``, the
``docker`` CLI and its engine) into these types once, where they call it; the message is one line
naming the node and what to check, and ``node`` names it too when the error is about one node.
Errors of one backend live with it: the lab's (``NeedsRoot``, ``LabBusy``) in
:mod:`connreset.lab.errors` (still importable from here and from ``connreset``), the Kubernetes
API's in :mod:`connreset.kubernetes.api`.
"""

from __future__ import annotations

import importlib
from typing import Any


class ConnresetError(Exception):
    """Base class of every error connreset raises on purpose."""

    exit_code = 3


class ValidationError(ConnresetError):
    """The experiment, its parameters or its backend choice are invalid."""

    exit_code = 2

    def __init__(self, message: str, *, step: str | None = None, file: str | None = None) -> None:
        self.message = message
        self.step = step
        self.file = file
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ":".join(p for p in (self.file, self.step and f"step {self.step!r}") if p)
        return f"{where}: {self.message}" if where else self.message

    def located(self, file: str) -> ValidationError:
        """The same error, naming ``file`` if it did not name one yet."""
        return self if self.file else ValidationError(self.message, step=self.step, file=file)


class ExpectationFailed(ConnresetError):
    """An expectation about the system under test did not hold."""

    exit_code = 1


class BackendError(ConnresetError):
    """A backend could not do what was asked of it.

    Args:
        message: one line, naming the node and what to check.
        node: the node it is about, if it is about one.
    """

    exit_code = 3

    def __init__(self, message: str = "", *, node: str | None = None) -> None:
        super().__init__(message)
        self.node = node

    def __reduce__(self) -> tuple[Any, ...]:  # keeps ``node`` through pickle and copy
        return (_rebuild, (type(self), str(self), self.node))


def _rebuild(cls: type[BackendError], message: str, node: str | None) -> BackendError:
    return cls(message, node=node)


class Unreachable(BackendError):
    """A node, or the engine it lives in, cannot be reached (refused, no route, no socket), or
    the connection to it was lost."""


class TimedOut(BackendError):
    """A connection or a command did not finish within its deadline."""


class AuthFailed(BackendError):
    """The node refused who we are or what we may do: the SSH login, the key (it cannot be read
    or decrypted), or ``sudo`` (it wants a password, or the user may not use it)."""


class HostKeyRefused(BackendError):
    """A node's SSH host key is unknown to ``known_hosts`` or changed: refused, nothing ran."""


class ToolMissing(BackendError):
    """A program connreset needs is not installed: the ``docker`` CLI here, ``sudo`` on a node."""


class NodeUnavailable(BackendError):
    """A node is not there or not running: e.g. its container is gone, stopped, or not found."""


class JournalError(BackendError):
    """The journal could not be written: the change it was to precede was not made."""


_MOVED = {"NeedsRoot": "connreset.lab.errors", "LabBusy": "connreset.lab.errors"}


def __getattr__(name: str) -> type[BackendError]:
    """The lab's errors, where they were before they moved to :mod:`connreset.lab.errors`.

    Imported by name at first use, so that this core module never imports the lab.
    """
    if name in _MOVED:
        moved: type[BackendError] = getattr(importlib.import_module(_MOVED[name]), name)
        return moved
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
