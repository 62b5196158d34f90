"""The live terminal UI (textual): ``RunApp`` shows a run's step graph, nodes, pods and logs;
``SweepApp`` shows a sweep's trials the same way, with the sweep's progress.

The engine never touches widgets: :class:`~connreset.tui.bridge.Bridge` turns its events into
Messages. Importing this package needs textual; the CLI imports it only when it shows the TUI.
"""

from connreset.tui.app import Interrupt, LiveApp, RunApp, Runner
from connreset.tui.bridge import Bridge
from connreset.tui.messages import Ended, EngineEvent, Finished, RunEnded, SweepEnded
from connreset.tui.sweep_app import SweepApp, SweepRunner

__all__ = [
    "Bridge",
    "Ended",
    "EngineEvent",
    "Finished",
    "Interrupt",
    "LiveApp",
    "RunApp",
    "RunEnded",
    "Runner",
    "SweepApp",
    "SweepEnded",
    "SweepRunner",
]
