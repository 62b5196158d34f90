"""The TUI's widgets, one job each; they are updated by the app's message handlers only."""

from connreset.tui.widgets.event_log import EventLog, PodLogs
from connreset.tui.widgets.nodes import NodeGauge, NodeGauges
from connreset.tui.widgets.pods import PodsTable
from connreset.tui.widgets.step_graph import StepGraph
from connreset.tui.widgets.sweep import SweepPanel
from connreset.tui.widgets.verdict import VerdictPanel

__all__ = [
    "EventLog",
    "NodeGauge",
    "NodeGauges",
    "PodLogs",
    "PodsTable",
    "StepGraph",
    "SweepPanel",
    "VerdictPanel",
]
