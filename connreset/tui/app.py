"""The live TUI: the engine runs as a worker in the app's own event loop; its events arrive as
Messages through :class:`~connreset.tui.bridge.Bridge`, and the handlers here update the widgets.

:class:`LiveApp` is the layout, the events' handlers and the keys; :class:`RunApp` shows one run
(a sweep's app, :class:`~connreset.tui.sweep_app.SweepApp`, shows many).

Keys: ``q`` (or Ctrl-C) stops the run; the undos run, and the app says so and exits with 130. A
second ``q`` while they run stops waiting for them (what is left stays pending in the journal for
``connreset restore``). Once the run has ended, ``q`` quits with the run's exit code. ``l``
shows or hides the pod logs.

An app may also be fed from outside: a run in a guest (``connreset.ui.relay``) publishes its
events there, which the runner emits to the app's subscribers; the first ``q`` then calls the
app's ``interrupt`` (an interrupt for the run in the guest) rather than cancelling the worker,
the second sets ``abandon`` as for a host run, and the runner returns a
:class:`~connreset.tui.messages.Finished` (the exit code and the run's closing words) instead of
a result.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Header, Static

from connreset import events as ev
from connreset._support.logs import get_logger
from connreset.engine.results import RunResult
from connreset.engine.runner import RunCancelled
from connreset.errors import ConnresetError
from connreset.experiment import PlannedPhase
from connreset.tui.bridge import Bridge
from connreset.tui.messages import Ended, EngineEvent, Finished, RunEnded
from connreset.tui.widgets import (
    EventLog,
    NodeGauges,
    PodLogs,
    PodsTable,
    StepGraph,
    SweepPanel,
    VerdictPanel,
)

log = get_logger("connreset.tui")

#: What the app runs: given the subscribers and the ``abandon`` event, run and return the result
#: (or, fed from outside, how it finished).
Runner = Callable[[Sequence[ev.Subscriber], asyncio.Event], Awaitable[RunResult | Finished]]
#: For an app fed from outside: pass a stop on to the work; False if it could not (yet), and then
#: the worker is cancelled as for a host run.
Interrupt = Callable[[], bool]


class LiveApp(App[int]):
    """The panes, the engine events' handlers and the keys, for a run's app and a sweep's.

    A subclass runs its work in :meth:`drive` (a worker) and, once it is over, sets ``ended``.
    """

    TITLE = "connreset"
    CSS = """
    #top { height: 1fr; }
    #main { width: 3fr; }
    #graph-box { height: 1fr; border: round $primary; }
    #side { width: 2fr; }
    #nodes-box { height: auto; max-height: 60%; border: round $primary; }
    #sweep { border: round $accent; }
    PodsTable { height: 1fr; border: round $primary; }
    #bottom { height: 9; }
    EventLog { width: 1fr; border: round $primary; }
    PodLogs { width: 1fr; border: round $secondary; }
    #status { height: 1; padding: 0 1; background: $boost; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "stop", "Stop (undo) / quit"),
        Binding("ctrl+c", "stop", "Stop", show=False, priority=True),
        Binding("l", "toggle_logs", "Logs"),
    ]

    ended: Ended | None

    def __init__(
        self,
        phases: Sequence[PlannedPhase],
        *,
        title: str = "connreset",
        subtitle: str = "",
        handle_signals: bool = False,
        driven: bool = True,
        interrupt: Interrupt | None = None,
    ) -> None:
        super().__init__()
        self.phases = tuple(phases)
        self.driven = driven
        self.interrupt = interrupt
        self.finished: ev.RunFinished | None = None  # the last run's end, as its events said
        self.title = title
        self.sub_title = subtitle
        self.handle_signals = handle_signals
        self.abandon = asyncio.Event()
        self.ended = None
        self.stopping = False
        self.status = "waiting for the run to start"
        self._task: asyncio.Task[object] | None = None
        self._widgets_ready = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="top"):
            with Vertical(id="main"):
                yield SweepPanel(id="sweep")
                with VerticalScroll(id="graph-box"):
                    yield StepGraph(self.phases, id="graph")
            with Vertical(id="side"):
                with VerticalScroll(id="nodes-box"):
                    yield NodeGauges(id="nodes")
                yield PodsTable(id="pods")
        yield VerdictPanel(id="verdict")
        with Horizontal(id="bottom"):
            yield EventLog(id="events")
            yield PodLogs(id="logs")
        yield Static(self.status, id="status")
        yield Footer()

    def on_mount(self) -> None:
        self._widgets_ready = True
        self.query_one("#graph-box").border_title = "steps"
        self.query_one("#nodes-box").border_title = "conntrack per node"
        self.query_one("#sweep").border_title = "sweep"
        self.query_one(PodsTable).border_title = "pods"
        self.query_one(EventLog).border_title = "events"
        self.query_one(PodLogs).border_title = "pod logs (l)"
        self.begin_capture_print(self.query_one(EventLog), stdout=True, stderr=True)
        if self.handle_signals:
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self.action_stop)
        if self.driven:
            self.run_worker(self._worker(), name="engine", exit_on_error=False)

    # -- the engine, as a worker -----------------------------------------------------------------
    async def _worker(self) -> None:
        self._task = asyncio.current_task()
        await self.drive()

    async def drive(self) -> None:
        """Run the work with ``[Bridge(self)]`` as its subscribers; post a message when it is over."""
        raise NotImplementedError

    # -- messages --------------------------------------------------------------------------------
    def on_engine_event(self, message: EngineEvent) -> None:
        event = message.event
        graph = self.query_one(StepGraph)
        match event:
            case ev.RunStarted():
                self.show_run_started(event)
            case ev.PhaseStarted():
                graph.phase(event.phase, "running")
                self.say(f"phase {event.phase}")
            case ev.PhaseFinished():
                graph.phase(event.phase, event.status)
            case ev.StepStarted():
                graph.step(event.phase, event.step, "running")
            case ev.StepFinished():
                graph.step(event.phase, event.step, event.status)
            case ev.Progress():
                text = f"{event.done:g}/{event.total:g} {event.unit}".rstrip()
                graph.step_progress(event.phase, event.step, text)
                self.say(f"{event.step}: {text}" + (f"  {event.detail}" if event.detail else ""))
            case ev.Sample():
                self.query_one(NodeGauges).gauge(event.node).sample(event.metric, event.value)
            case ev.FindingRecorded(key="max", value=value):
                self._limits(value)
            case ev.PodStates():
                self.query_one(PodsTable).show(event.deployment, event.pods)
            case ev.PodLog():
                self.query_one(PodLogs).line(event)
            case ev.SweepProgress():
                self.query_one(SweepPanel).report(event)
            case ev.UndoFinished() if self.stopping:
                self.say(f"stopping: put back {event.record.describe()}  (q again: stop waiting)")
            case ev.RunFinished():
                self.finished = event
            case _:
                pass
        self.query_one(EventLog).event(event)

    def show_run_started(self, event: ev.RunStarted) -> None:
        """A run begins: its experiment and parameters in the header."""
        params = " ".join(f"{k}={v}" for k, v in event.params.items())
        cluster = event.environment.get("cluster")
        proxy = cluster.get("kube_proxy") if isinstance(cluster, dict) else None
        if isinstance(proxy, dict):  # the kubernetes backend's: its ConfigMap's mode and conntrack
            proxy = proxy.get("mode")
        where = f"{event.testbed} (kube-proxy {str(proxy).split(' (')[0]})" if proxy else event.testbed
        self.title = event.experiment
        self.sub_title = f"{where}{in_guest(event)}  {params}".rstrip()

    def _limits(self, value: object) -> None:
        """Observe's ``max`` finding: one number for every node, or one per node."""
        gauges = self.query_one(NodeGauges)
        if isinstance(value, (int, float)):
            for gauge in gauges.gauges.values():
                gauge.set_limit(value)
        elif isinstance(value, dict):
            for node, limit in value.items():
                if isinstance(limit, (int, float)):
                    gauges.gauge(str(node)).set_limit(limit)

    # -- keys ------------------------------------------------------------------------------------
    def action_stop(self) -> None:
        if self.ended is not None or not self.driven:
            self.exit(self.ended.exit_code if self.ended else 0)
        elif self._task is None:
            self.exit(130)
        elif not self.stopping:
            self.stopping = True
            self.say("stopping: putting everything back…  (q again: stop waiting)")
            if self.interrupt is None or not self.interrupt():
                self._task.cancel()
        else:
            self.abandon.set()
            self.say("stopped waiting for the undos: what is left stays pending in the journal")

    def action_toggle_logs(self) -> None:
        logs = self.query_one(PodLogs)
        logs.display = not logs.display

    async def action_quit(self) -> None:  # Ctrl-Q: the same as q, never skipping the undos
        self.action_stop()

    def say(self, text: str) -> None:
        self.status = text
        if self._widgets_ready:
            self.query_one("#status", Static).update(text)


class RunApp(LiveApp):
    """Shows one run (or, with ``runner=None``, whatever events it is sent: replays, tests)."""

    ended: RunEnded | None

    def __init__(
        self,
        phases: Sequence[PlannedPhase],
        runner: Runner | None = None,
        *,
        title: str = "connreset",
        subtitle: str = "",
        handle_signals: bool = False,
        interrupt: Interrupt | None = None,
    ) -> None:
        super().__init__(
            phases,
            title=title,
            subtitle=subtitle,
            handle_signals=handle_signals,
            driven=runner is not None,
            interrupt=interrupt,
        )
        self.runner = runner
        self.result: RunResult | None = None

    async def drive(self) -> None:
        assert self.runner is not None
        self.say("running")
        try:
            result = await self.runner([Bridge(self)], self.abandon)
        except RunCancelled as exc:
            self.post_message(RunEnded(exc.result, cancelled=True, exit_code=130))
        except asyncio.CancelledError:  # before the run began (the testbed was opening)
            self.post_message(RunEnded(None, cancelled=True, exit_code=130))
        except ConnresetError as exc:
            self.post_message(RunEnded(None, error=str(exc), exit_code=exc.exit_code))
        except Exception as exc:  # the app must still end, and say why
            log.exception("the run failed", error=repr(exc))
            self.post_message(RunEnded(None, error=f"{type(exc).__name__}: {exc}", exit_code=3))
        else:
            if isinstance(result, Finished):  # fed from outside: the result stayed there
                code = result.exit_code
                self.post_message(RunEnded(None, cancelled=code == 130, exit_code=code, text=result.text))
            else:
                self.post_message(RunEnded(result, exit_code=result.exit_code))

    def on_run_ended(self, message: RunEnded) -> None:
        self.ended = message
        self.result = message.result
        if message.result is not None:
            self.query_one(VerdictPanel).show(message.result, width=max(self.size.width - 6, 60))
        elif message.text:
            self.query_one(VerdictPanel).show_text(message.text, "verdict")
        if message.cancelled:
            self.say(
                "stopped: "
                + (_undone(message.result) if message.result or not message.text else last_line(message.text))
            )
            self.exit(message.exit_code)
            return
        if message.error:
            self.say(f"could not run: {message.error}  (q: quit)")
        elif message.result is None:
            outcome = self.finished.outcome if self.finished else "the run did not end"
            self.say(f"finished: {outcome}; exit {message.exit_code}  (q: quit)")
        else:
            self.say(f"finished: {message.result.outcome}; {_undone(message.result)}  (q: quit)")


def in_guest(event: ev.RunStarted) -> str:
    """`` in a guest of 5.10.0-32-amd64 (TCG)`` for a run in a guest, else ''."""
    kernel = event.environment.get("guest_kernel")
    if not kernel:
        return ""
    accel = str(event.environment.get("guest_accel", "")).upper()
    return f" in a guest of {kernel}" + (f" ({accel})" if accel else "")


def last_line(text: str) -> str:
    """The last line of what work fed from outside said (how it stopped)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1].removeprefix("interrupted: ") if lines else ""


def _undone(result: RunResult | None) -> str:
    if result is None:
        return "the run had not begun; nothing was changed"
    verified = sum(1 for u in result.undo if u.verified)
    text = f"{verified}/{len(result.undo)} change(s) put back and verified"
    if result.pending:
        text += f"; {len(result.pending)} pending: connreset restore {result.journal or 'JOURNAL'}"
    return text
