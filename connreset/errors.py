"""The one exception tree of connreset.

::

    ConnresetError
    ├── ValidationError        invalid input; nothing touched a node (exit 2)
    ├── ExpectationFailed      an assertion about the system did not hold (exit 1)
    └── BackendError           the infrastructure failed us (exit 3)
        ├── NeedsRoot          the lab needs root and changes nothing without it
        ├── LabBusy            another lab holds the host-wide lock
        └── JournalError       an undo could not be written to disk, so its change was not made
"""

from __future__ import annotations


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
    """A backend could not do what was asked of it."""

    exit_code = 3


class NeedsRoot(BackendError):
    """The operation needs root (network namespaces, iptables, global sysctls)."""


class LabBusy(BackendError):
    """Another lab on this machine holds the host-wide lock."""


class JournalError(BackendError):
    """The journal could not be written: the change it was to precede was not made."""
