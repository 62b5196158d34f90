"""``connreset.run``: build the plan and the testbed, open it, run on it, close it, journal it.

The engine itself (:func:`connreset.run_on`) works on a testbed that is already open; this module
is the one-call form around it, for scripts and the command line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import attrs

from connreset import events as ev
from connreset._support.aio import Abandoned, shielded
from connreset._support.logs import get_logger
from connreset.engine.options import RunOptions
from connreset.engine.results import RunResult
from connreset.engine.runner import RunCancelled, run_on
from connreset.experiment.checks import check_plan
from connreset.experiment.plan import Target, build
from connreset.runs.journal import JournalWriter
from connreset.testbed import Testbed, TestbedSpec, registry

log = get_logger("connreset")


def make_testbed(spec: TestbedSpec | None = None) -> Testbed:
    """The testbed a spec names (the lab by default), built but not opened."""
    return registry.build(spec or TestbedSpec())


async def run(
    experiment: Target,
    testbed: Testbed | TestbedSpec | None = None,
    params: Mapping[str, object] | None = None,
    *,
    raw_params: Mapping[str, str] | None = None,
    options: RunOptions | None = None,
    **settings: Any,
) -> RunResult:
    """Run an experiment on a testbed (the lab by default): open it, run, close it.

    ``testbed`` is a :class:`Testbed` (closed; it is opened and closed here) or a
    :class:`TestbedSpec` to build one from entry points. ``options`` (:class:`RunOptions`) are
    the run's settings, and single ones may be given as keywords (``journal=PATH``,
    ``step_timeout=5``...). To run several experiments on one open testbed, use
    :func:`connreset.run_on` inside ``async with testbed:``.

    Raises:
        ValidationError: the experiment, its parameters, the testbed choice or the journal path
            are invalid; nothing was touched.
        BackendError: the testbed could not be opened (e.g. NeedsRoot for the lab); nothing ran.
        asyncio.CancelledError: the run was cancelled (a :class:`RunCancelled` with the result);
            undos ran first.
    """
    plan = build(experiment, params, raw_params)
    options = RunOptions.of(options, **settings)
    if testbed is None or isinstance(testbed, TestbedSpec):
        spec = testbed or TestbedSpec()
        spec = TestbedSpec(
            spec.cluster,
            spec.node_access,
            {**plan.options_for(spec.cluster), **spec.cluster_options},
            spec.node_options,
        )
        testbed = make_testbed(spec)
    check_plan(plan.phases, testbed)
    writer = JournalWriter(options.journal) if options.journal is not None else None
    result: RunResult | None = None
    cancelled = False
    try:
        await testbed.open()
        try:
            result = await run_on(testbed, plan, options, journal=writer)
        except RunCancelled as exc:
            result, cancelled = exc.result, True
        finally:
            cancelled |= await _close_testbed(testbed, options.abandon, options.undo_timeout)
    finally:
        if writer is not None:
            if result is not None and cancelled and not result.cancelled:  # a signal while closing
                writer.write(ev.RunFinished("error", ev.now_iso(), time.monotonic(), True, result.pending))
            _close_journal(writer)
    assert result is not None
    if cancelled:
        raise RunCancelled(attrs.evolve(result, outcome="error", cancelled=True))
    return result


async def _close_testbed(testbed: Testbed, abandon: asyncio.Event | None, timeout: float) -> bool:
    """Close even if cancelled (return True if we were); after a second Ctrl-C, wait at most
    ``timeout`` seconds."""
    if abandon is not None and abandon.is_set():
        try:
            await asyncio.wait_for(testbed.close(), timeout)
        except Exception as exc:
            log.error("closing the testbed did not finish", testbed=testbed.name, error=repr(exc))
        return True
    try:
        return await shielded(testbed.close(), abandon)
    except Abandoned:
        log.error("stopped waiting for the testbed to close", testbed=testbed.name)
        return True


def _close_journal(writer: JournalWriter) -> None:
    try:
        writer.close()
    except OSError as exc:
        log.error(
            "could not write the journal's summary; its lines stay", path=str(writer.path), error=str(exc)
        )


def run_sync(experiment: Target, testbed: Testbed | TestbedSpec | None = None, **kwargs: Any) -> RunResult:
    """The synchronous twin of :func:`run`."""
    return asyncio.run(run(experiment, testbed, **kwargs))
