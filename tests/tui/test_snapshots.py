"""Snapshots of the TUI's layout (pytest-textual-snapshot): a fixed scene, a fixed size.

Update them after a deliberate change with ``pytest tests/tui --snapshot-update`` and look at the
SVGs in ``tests/tui/__snapshots__``.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.pilot import Pilot

from tests.tui import scene


def feeding(*, finished: bool) -> Callable[[Pilot[int]], object]:
    return settled(lambda app: scene.feed(app, finished=finished))  # type: ignore[arg-type]


def settled(feed: Callable[[object], None]) -> Callable[[Pilot[int]], object]:
    async def run_before(pilot: Pilot[int]) -> None:
        feed(pilot.app)
        await pilot.pause()  # the messages are handled (gauges mounted)
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()  # and laid out

    return run_before


def test_a_running_experiment(snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(scene.app(), terminal_size=scene.SIZE, run_before=feeding(finished=False))


def test_the_verdict_at_the_end(snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(scene.app(), terminal_size=scene.SIZE, run_before=feeding(finished=True))


def test_without_pod_logs(snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(
        scene.app(), terminal_size=scene.SIZE, press=["l"], run_before=feeding(finished=False)
    )


def test_a_sweeps_fourth_trial(snap_compare: Callable[..., bool]) -> None:
    """The sweep pane (trials, the trial's parameters, the last one's outcome, the boundary so far)
    above the trial's pods; the trial's own steps and gauges."""
    assert snap_compare(
        scene.sweep_app(),
        terminal_size=scene.SIZE,
        run_before=settled(scene.feed_sweep),  # type: ignore[arg-type]
    )
