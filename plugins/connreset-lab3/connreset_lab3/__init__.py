"""An example backend plugin: connreset's lab, with three nodes."""

from __future__ import annotations

from connreset.backends.lab import LabBackend


def three_node_lab(**options: str) -> LabBackend:
    """The factory named by the ``connreset.backends`` entry point ``lab3``."""
    return LabBackend(nodes=3, **options)
