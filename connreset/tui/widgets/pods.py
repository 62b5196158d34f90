"""Pods with their phase (Running, CrashLoopBackOff, ...) and restart counts."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

from connreset import events as ev

_PHASE_STYLE = {"Running": "green", "CrashLoopBackOff": "bold red", "Pending": "yellow"}


class PodsTable(DataTable[object]):
    """One row per pod (its name is the row key), from PodStates events."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="none", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self.pods: dict[str, tuple[ev.PodState, ...]] = {}

    def on_mount(self) -> None:
        self.add_column("pod", key="pod")
        self.add_column("phase", key="phase")
        self.add_column("restarts", key="restarts")
        self.add_column("node", key="node")

    def forget(self) -> None:
        """No pods (a sweep's next trial deploys its own)."""
        self.pods.clear()
        self.clear()

    def show(self, deployment: str, pods: Sequence[ev.PodState]) -> None:
        """Replace a deployment's rows with what the cluster said now."""
        old = {p.name for p in self.pods.get(deployment, ())}
        self.pods[deployment] = tuple(pods)
        new = {p.name for p in pods}
        for name in old - new:
            self.remove_row(name)
        for pod in pods:
            cells = (
                pod.name,
                Text(pod.phase, style=_PHASE_STYLE.get(pod.phase, "")),
                Text(str(pod.restarts), style="bold red" if pod.restarts else ""),
                pod.node or "",
            )
            if pod.name in old:
                for column, value in zip(("pod", "phase", "restarts", "node"), cells, strict=True):
                    self.update_cell(pod.name, column, value)
            else:
                self.add_row(*cells, key=pod.name)
