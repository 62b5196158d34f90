"""The live terminal UI (textual): ``RunApp`` shows a run's step graph, nodes, pods and logs.

The engine never touches widgets: :class:`~connreset.tui.bridge.Bridge` turns its events into
Messages. Importing this package needs textual; the CLI imports it only when it shows the TUI.
"""

from connreset.tui.app import RunApp, Runner
from connreset.tui.bridge import Bridge
from connreset.tui.messages import EngineEvent, RunEnded

__all__ = ["Bridge", "EngineEvent", "RunApp", "RunEnded", "Runner"]
