"""``connreset.doctor(testbed, window=...)``: read every node, judge, return a typed report.

The doctor is a run of a read-only plan (one :class:`ReadNode` step per node, in parallel)
through the engine: so the testbed is opened and closed as for any run, the Kubernetes guard
applies, what a node access makes for the run (debug pods) carries the run's id and is removed at
the end (or by ``connreset restore JOURNAL``), and the engine refuses any change.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Sequence

from connreset import events as ev
from connreset.doctor.model import DoctorReport, NodeReport
from connreset.doctor.step import SLACK, ReadNode, kube_proxy_config
from connreset.engine.results import RunResult
from connreset.engine.runner import RunCancelled, new_run_id, run_on
from connreset.errors import BackendError, ValidationError
from connreset.experiment import Experiment, Phase
from connreset.experiment.plan import Plan, build
from connreset.runs import make_testbed
from connreset.runs.journal import JournalWriter
from connreset.steps.base import parallel
from connreset.testbed import Testbed, TestbedSpec

WINDOW = 10.0
PHASE = "read"


#: Where the doctor's debug pods go on Kubernetes unless ``--cluster-opt namespace=`` says: as
#: ``kubectl debug node/NODE`` puts them in the context's namespace, so that the doctor makes no
#: object but the debug pods.
DEBUG_NAMESPACE = "default"


def make_doctor_testbed(spec: TestbedSpec) -> Testbed:
    """The testbed a spec names, except that ``lab`` is the lab as it stands, read in place
    (:mod:`connreset.doctor.lab`): the doctor never builds or removes one; and on Kubernetes
    the debug pods go to an existing namespace (``default`` unless ``namespace=`` says), so
    they are the only objects it makes."""
    from connreset.doctor.lab import testbed_for

    if spec.cluster == "kubernetes" and "namespace" not in spec.cluster_options:
        spec = TestbedSpec(
            spec.cluster,
            spec.node_access,
            {**spec.cluster_options, "namespace": DEBUG_NAMESPACE},
            spec.node_options,
        )
    return testbed_for(spec) or make_testbed(spec)


def check_window(window: object) -> float:
    """A finite number of seconds > 0.

    Raises:
        ValidationError: in one line.
    """
    if isinstance(window, bool) or not isinstance(window, (int, float)) or not 0 < window < math.inf:
        raise ValidationError(f"window must be a finite number of seconds > 0, got {window!r}")
    return float(window)


def doctor_plan(nodes: Sequence[str], window: float = WINDOW) -> Plan:
    """The doctor's plan: one read-only step per node, all at once. ``plan.read_only`` is True."""
    steps = [ReadNode(node=n, window=window, timeout=window + SLACK) for n in nodes]
    phase = Phase(PHASE, parallel(*steps) if len(steps) > 1 else steps, "every check ok")
    plan = build(Experiment("doctor", [phase], "is this cluster exposed? (read-only)"))
    assert plan.read_only
    return plan


def created(testbed: Testbed, run_id: str) -> tuple[str, ...]:
    """What the doctor makes to read the nodes (removed at the end), in words."""
    if testbed.access.name == "kubectl-debug":
        from connreset.kubernetes import manifests
        from connreset.testbed import RUN_LABEL

        ns = testbed.cluster.options.namespace or manifests.namespace_name(run_id)
        return (
            f"one privileged debug pod per node in namespace {ns}, labelled {RUN_LABEL}={run_id}; "
            "deleted at the end (or by `connreset restore JOURNAL`)",
        )
    return ()


async def doctor(
    testbed: Testbed | TestbedSpec | None = None,
    window: float = WINDOW,
    *,
    subscribers: Sequence[ev.Subscriber] = (),
    journal: str | os.PathLike[str] | None = None,
    run_id: str | None = None,
) -> DoctorReport:
    """Read every node of a testbed (the lab by default) over ``window`` seconds and judge what
    exposes it to conntrack's resets; change nothing.

    A closed testbed is opened and closed here; an open one stays open.

    Raises:
        ValidationError: the window or the testbed choice is invalid; nothing was touched.
        BackendError: the testbed could not be opened.
        asyncio.CancelledError: interrupted (what the run made, such as debug pods, was removed).
    """
    report, _ = await doctor_run(testbed, window, subscribers=subscribers, journal=journal, run_id=run_id)
    return report


async def doctor_run(
    testbed: Testbed | TestbedSpec | None = None,
    window: float = WINDOW,
    *,
    subscribers: Sequence[ev.Subscriber] = (),
    journal: str | os.PathLike[str] | None = None,
    run_id: str | None = None,
) -> tuple[DoctorReport, RunResult]:
    """:func:`doctor`, with the engine's result of the run too (for the TUI)."""
    window = check_window(window)
    if testbed is None or isinstance(testbed, TestbedSpec):
        testbed = make_doctor_testbed(testbed or TestbedSpec())
    opened = not testbed.is_open
    run_id = run_id or new_run_id()
    started = ev.now_iso()
    writer = JournalWriter(journal) if journal is not None else None
    try:
        if opened:
            await testbed.open()
        nodes = list(testbed.node_names() or ())
        if not nodes:
            raise BackendError(f"testbed {testbed.name} has no node")
        plan = doctor_plan(nodes, window)
        try:
            result = await run_on(
                testbed,
                plan,
                subscribers=subscribers,
                journal=writer,
                journal_path=journal,
                run_id=run_id,
                watchdog_lease=None,
            )
        except RunCancelled:
            raise asyncio.CancelledError from None
    finally:
        try:
            if opened:
                await asyncio.shield(testbed.close())
        finally:
            if writer is not None:
                writer.close()
    found = result.findings.get(PHASE, {})
    failed = {s.name: s.detail for s in result.steps}
    reports = []
    for node in nodes:
        data = found.get(node)
        if isinstance(data, dict):
            reports.append(NodeReport.from_json(data))
        else:
            reports.append(NodeReport(node, None, (), failed.get(f"read-{node}") or "not read"))
    report = DoctorReport(
        testbed.name, window, started, reports, kube_proxy_config(testbed), run_id, created(testbed, run_id)
    )
    return report, result


def doctor_sync(testbed: Testbed | TestbedSpec | None = None, window: float = WINDOW) -> DoctorReport:
    """The synchronous twin of :func:`doctor`."""
    return asyncio.run(doctor(testbed, window))
