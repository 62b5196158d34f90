"""The step graph by phase, with live states; steps that run concurrently sit side by side."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

from connreset.experiment import PlannedPhase
from connreset.steps.base import FlatStep

ICON = {
    "pending": "·",
    "running": "▶",
    "ok": "✓",
    "passed": "✓",
    "failed": "✗",
    "error": "!",
    "skipped": "-",
    "cancelled": "⊘",
}
STYLE = {
    "pending": "dim",
    "running": "bold yellow",
    "ok": "green",
    "passed": "bold green",
    "failed": "bold red",
    "error": "bold red",
    "skipped": "dim",
    "cancelled": "magenta",
}


def levels(steps: Sequence[FlatStep]) -> list[list[str]]:
    """Steps grouped by depth in the phase's DAG: a level's steps can run at the same time."""
    depth: dict[str, int] = {}
    for f in steps:  # topological order: every dependency comes first
        depth[f.name] = 1 + max((depth[d] for d in f.deps if d in depth), default=-1)
    rows: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for f in steps:
        rows[depth[f.name]].append(f.name)
    return rows


class StepGraph(Static):
    """Every phase's steps, level by level, each with its state (and progress while it runs)."""

    def __init__(self, phases: Sequence[PlannedPhase], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._reset(phases)

    def _reset(self, phases: Sequence[PlannedPhase]) -> None:
        self.phases = tuple(phases)
        self.phase_state = {p.name: "pending" for p in self.phases}
        self.step_state = {(p.name, f.name): "pending" for p in self.phases for f in p.steps}
        self.progress: dict[tuple[str, str], str] = {}
        self._levels = {p.name: levels(p.steps) for p in self.phases}

    def on_mount(self) -> None:
        self._show()

    def show(self, phases: Sequence[PlannedPhase]) -> None:
        """Another run's graph (a sweep's next trial), every step pending."""
        self._reset(phases)
        self._show()

    def phase(self, phase: str, state: str) -> None:
        if phase not in self.phase_state:
            return
        self.phase_state[phase] = state
        self._show()

    def step(self, phase: str, step: str, state: str) -> None:
        if (phase, step) not in self.step_state:
            return  # not in the graph shown
        self.step_state[(phase, step)] = state
        if state != "running":
            self.progress.pop((phase, step), None)
        self._show()

    def step_progress(self, phase: str, step: str, text: str) -> None:
        self.progress[(phase, step)] = text
        self._show()

    def render_text(self) -> Text:
        out = Text()
        for p in self.phases:
            state = self.phase_state[p.name]
            out.append(f"{ICON[state]} {p.name}", style="bold " + STYLE[state])
            out.append(f"  {state}\n", style=STYLE[state])
            for row in self._levels[p.name]:
                out.append("   ")
                for i, name in enumerate(row):
                    if i:
                        out.append(" │ ", style="dim")
                    s = self.step_state[(p.name, name)]
                    out.append(f"{ICON[s]} {name}", style=STYLE[s])
                    extra = self.progress.get((p.name, name))
                    if extra:
                        out.append(f" {extra}", style="yellow")
                out.append("\n")
        out.rstrip()
        return out

    def _show(self) -> None:
        self.update(self.render_text())
