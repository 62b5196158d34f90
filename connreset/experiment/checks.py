"""The checks a plan must pass on a testbed before anything runs, in one place.

:func:`check_plan` refuses, with a ValidationError naming the step:

- a step needing a capability the testbed lacks (with why, where the node access says);
- a node the testbed does not have;
- a workload kind the cluster backend cannot run (with its reason);
- replica counts the cluster cannot hold (:mod:`connreset.experiment.capacity`).

Steps say what the checks need (``requires``, :meth:`~connreset.Step.target_nodes`,
:meth:`~connreset.Step.workloads`, :meth:`~connreset.Step.sets_replicas`); the testbed says what
it has. The CLI (before ``--dry-run`` and before a run), :func:`connreset.run`, the engine's
preflight and sweeps all call this one function.
"""

from __future__ import annotations

from collections.abc import Sequence

from connreset.errors import ValidationError
from connreset.experiment import PlannedPhase
from connreset.experiment.capacity import check_capacity
from connreset.testbed import Testbed


def check_plan(phases: Sequence[PlannedPhase], testbed: Testbed) -> None:
    """Refuse what ``testbed`` cannot do of ``phases`` (see the module docstring).

    Raises:
        ValidationError: naming the step and why.
    """
    capabilities = testbed.capabilities
    why = testbed.withheld
    nodes = testbed.node_names()
    name = testbed.name
    for flat in (f for phase in phases for f in phase.steps):
        step = flat.step
        missing = set(step.requires) - capabilities
        if missing:
            reasons = [why[m] for m in sorted(missing) if m in why]
            raise ValidationError(
                f"backend {name!r} cannot do {step.kind} (needs {', '.join(sorted(missing))})"
                + "".join(f": {r}" for r in reasons),
                step=flat.name,
            )
        for workload in step.workloads():
            refused = testbed.cluster.refuses(workload)
            if refused:
                raise ValidationError(refused, step=flat.name)
        if nodes is None:
            continue
        unknown = [n for n in step.target_nodes() if n not in nodes]
        if unknown:
            raise ValidationError(
                f"unknown node {', '.join(map(repr, unknown))} (backend {name!r} has {', '.join(nodes)})",
                step=flat.name,
            )
    check_capacity(phases, testbed.capacity, name)
