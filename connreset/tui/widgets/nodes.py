"""Per node: the conntrack count against its max (a gauge and a sparkline), drops and invalids."""

from __future__ import annotations

from collections import deque

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, ProgressBar, Sparkline

HISTORY = 120  # samples kept per node for the sparkline


class NodeGauge(Vertical):
    """One node's conntrack table. Its values are kept here, and shown once mounted."""

    DEFAULT_CSS = """
    NodeGauge { height: auto; margin-bottom: 1; }
    NodeGauge ProgressBar { height: 1; }
    NodeGauge Sparkline { height: 2; }
    """

    def __init__(self, node: str) -> None:
        super().__init__(id=f"node-{_ident(node)}")
        self.node = node
        self.count: float | None = None
        self.limit: float | None = None
        self.counters: dict[str, float] = {}
        self.history: deque[float] = deque(maxlen=HISTORY)

    def compose(self) -> ComposeResult:
        yield Label(self.caption(), classes="caption")
        yield ProgressBar(total=1, show_eta=False, show_percentage=False, classes="gauge")
        yield Sparkline([], summary_function=max)

    def on_mount(self) -> None:
        self._show()

    def sample(self, metric: str, value: float) -> None:
        if metric == "conntrack_count":
            self.count = value
            self.history.append(value)
        elif metric == "conntrack_max":
            self.limit = value
        elif metric.startswith("conntrack_"):
            self.counters[metric.removeprefix("conntrack_")] = value
        self._show()

    def set_limit(self, value: float) -> None:
        self.limit = value
        self._show()

    def caption(self) -> str:
        count = "?" if self.count is None else f"{self.count:,.0f}"
        limit = "?" if self.limit is None else f"{self.limit:,.0f}"
        line = f"{self.node}  count {count} / max {limit}"
        if self.count is not None and self.limit:
            line += f"  {self.count / self.limit:.0%}"  # the bar's own percentage would be clipped
        counters = [f"{k} {self.counters[k]:,.0f}" for k in ("drop", "invalid") if k in self.counters]
        return line + ("\n" + "  ".join(counters) if counters else "")

    def _show(self) -> None:
        if not self.is_mounted or not self.children:
            return
        self.query_one(Label).update(self.caption())
        bar = self.query_one(ProgressBar)
        bar.display = self.limit is not None
        if self.limit is not None:
            bar.update(total=self.limit, progress=min(self.count or 0, self.limit))
        self.query_one(Sparkline).data = list(self.history)


def _ident(node: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in node)


class NodeGauges(Vertical):
    """A gauge per node, made when the node is first heard of."""

    DEFAULT_CSS = "NodeGauges { height: auto; }"

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.gauges: dict[str, NodeGauge] = {}

    def gauge(self, node: str) -> NodeGauge:
        if node not in self.gauges:
            self.gauges[node] = NodeGauge(node)
            self.mount(self.gauges[node])
        return self.gauges[node]
