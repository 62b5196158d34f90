"""The lab's own errors (the embedded lab only; the tree is drawn in :mod:`connreset.errors`).

::

    BackendError
    ├── NeedsRoot      the lab needs root and changes nothing without it
    └── LabBusy        another lab on this machine holds the host-wide lock

Both are also importable from ``connreset`` and ``connreset.errors``, where they were first.
"""

from __future__ import annotations

from connreset.errors import BackendError

__all__ = ["LabBusy", "NeedsRoot"]


class NeedsRoot(BackendError):
    """The operation needs root (network namespaces, iptables, global sysctls)."""


class LabBusy(BackendError):
    """Another lab on this machine holds the host-wide lock."""
