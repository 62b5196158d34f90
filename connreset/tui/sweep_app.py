"""The TUI for a sweep: each trial's run live in the panes, and the sweep pane (trials done of
planned, the trial's parameters, how the last one came out, the boundary so far).

The sweep runs as the app's worker with the same :class:`~connreset.tui.bridge.Bridge` as a run,
so every trial's events reach the panes and the sweep's ``SweepProgress`` reaches its pane. When
a trial's run starts, its step graph is built from its parameters. ``q`` stops the sweep: the
trial in flight is undone, the results so far are written, and the app exits with 130; a second
``q`` stops waiting for the trial's undos.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from connreset import events as ev
from connreset._support.logs import get_logger
from connreset.errors import ConnresetError
from connreset.sweep import Sweep, SweepCancelled, SweepResult, TrialError, summary
from connreset.tui.app import Interrupt, LiveApp, in_guest, last_line
from connreset.tui.bridge import Bridge
from connreset.tui.messages import Finished, SweepEnded
from connreset.tui.widgets import PodsTable, StepGraph, VerdictPanel
from connreset.ui.console import sweep_stopped, trial_error

log = get_logger("connreset.tui")

#: What the app runs: given the subscribers and the ``abandon`` event, sweep and return the result
#: (or, fed from outside, how it finished: see :class:`~connreset.tui.app.LiveApp`).
SweepRunner = Callable[[Sequence[ev.Subscriber], asyncio.Event], Awaitable[SweepResult | Finished]]


class SweepApp(LiveApp):
    """Shows a sweep (or, with ``runner=None``, whatever events it is sent: tests, screenshots)."""

    ended: SweepEnded | None

    def __init__(
        self,
        spec: Sweep,
        runner: SweepRunner | None = None,
        *,
        subtitle: str = "",
        handle_signals: bool = False,
        interrupt: Interrupt | None = None,
    ) -> None:
        super().__init__(
            (),
            title=f"sweep {spec.name}",
            subtitle=subtitle,
            handle_signals=handle_signals,
            driven=runner is not None,
            interrupt=interrupt,
        )
        self.spec = spec
        self.runner = runner
        self.result: SweepResult | None = None
        self.status = "waiting for the sweep to start"

    async def drive(self) -> None:
        assert self.runner is not None
        self.say("sweeping")
        try:
            result = await self.runner([Bridge(self)], self.abandon)
        except SweepCancelled as exc:
            self.post_message(
                SweepEnded(
                    exc.result,
                    cancelled=True,
                    exit_code=130,
                    trial=exc.trial,
                    written=exc.written,
                    write_error=exc.error,
                )
            )
        except asyncio.CancelledError:  # before the sweep began (the testbed was opening)
            self.post_message(SweepEnded(None, cancelled=True, exit_code=130))
        except TrialError as exc:
            self.post_message(SweepEnded(None, error=trial_error(exc), exit_code=3))
        except ConnresetError as exc:
            self.post_message(SweepEnded(None, error=str(exc), exit_code=exc.exit_code))
        except Exception as exc:  # the app must still end, and say why
            log.exception("the sweep failed", error=repr(exc))
            self.post_message(SweepEnded(None, error=f"{type(exc).__name__}: {exc}", exit_code=3))
        else:
            if isinstance(result, Finished):  # fed from outside: the result stayed there
                code = result.exit_code
                self.post_message(SweepEnded(None, cancelled=code == 130, exit_code=code, text=result.text))
            else:
                self.post_message(SweepEnded(result, exit_code=result.exit_code))

    def show_run_started(self, event: ev.RunStarted) -> None:
        """A trial's run begins: its step graph, and no pods yet (it deploys its own)."""
        self.sub_title = f"{event.experiment} on {event.testbed}{in_guest(event)}"
        try:
            phases = self.spec.plan(event.params).phases
        except Exception as exc:  # a graph that cannot be shown must not stop the sweep
            log.warning("cannot show the trial's steps", error=repr(exc))
            phases = ()
        self.query_one(StepGraph).show(phases)
        self.query_one(PodsTable).forget()

    def on_sweep_ended(self, message: SweepEnded) -> None:
        self.ended = message
        self.result = message.result
        if message.result is not None:
            self.query_one(VerdictPanel).show_text(summary(self.spec, message.result), "sweep")
        elif message.text:
            self.query_one(VerdictPanel).show_text(message.text, "sweep")
        if message.cancelled:
            if message.result is None and message.text:
                self.say("stopped: " + last_line(message.text))
            elif message.result is None:
                self.say("stopped: the sweep had not begun; nothing was changed")
            else:
                lines = sweep_stopped(message.result, message.trial, message.written, message.write_error)
                self.say("stopped: " + "; ".join(line.strip() for line in lines))
            self.exit(message.exit_code)
            return
        if message.error:
            self.say(f"could not sweep: {message.error}  (q: quit)")
        elif message.result is None:
            self.say(f"finished: exit {message.exit_code}  (q: quit)")
        else:
            where = f"; results in {message.result.out}" if message.result.out else ""
            self.say(f"finished: {len(message.result.trials)} trial(s){where}  (q: quit)")
