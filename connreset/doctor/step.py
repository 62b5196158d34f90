"""The doctor's one step: read a node's facts over the window and judge them. Not mutating."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from connreset._support import numbers
from connreset.doctor.checks import evaluate
from connreset.doctor.facts import READ_COMMANDS, READ_FILES, gather
from connreset.steps.base import Step, StepContext
from connreset.testbed import Testbed

#: Beyond the window: a node's first use may make a debug pod (kubectl-debug's ready timeout).
SLACK = 180.0


def kube_proxy_config(testbed: Testbed) -> dict[str, Any] | None:
    """kube-proxy's configuration as the cluster backend read it (the ConfigMap), if it did."""
    describe = getattr(testbed.cluster, "fingerprint", None)
    if not callable(describe):
        return None
    try:
        found = describe().get("kube_proxy")
    except Exception:  # a description must not stop the doctor
        return None
    return dict(found) if isinstance(found, dict) else None


@attrs.frozen(kw_only=True)
class ReadNode(Step):
    """Read one node's conntrack facts over ``window`` seconds; record its checks as a finding
    named after the node. Reads files and runs commands that only print (see ``facts.py``)."""

    kind: ClassVar[str] = "read-node"
    mutating: ClassVar[bool] = False

    node: str = attrs.field(validator=attrs.validators.min_len(1))
    window: float = attrs.field(default=10.0, validator=numbers.positive_field)

    def default_name(self) -> str:
        return f"read-{self.node}"

    def describe(self) -> str:
        return f"read {self.node} for {self.window:g} s"

    async def plan(self, testbed: Testbed) -> list[str]:
        return [
            f"reads {', '.join(READ_FILES)}",
            f"runs {'; '.join(' '.join(a) for a in READ_COMMANDS)} (each only prints)",
        ]

    async def run(self, ctx: StepContext) -> str | None:
        [node] = ctx.nodes([self.node])

        def sample(count: int) -> None:
            ctx.sample(self.node, "conntrack_count", count)

        facts = await gather(node, self.window, on_sample=sample)
        maximum = facts.sysctl("nf_conntrack_max")
        if maximum:
            ctx.sample(self.node, "conntrack_max", maximum)
        report = evaluate(facts, kube_proxy_config(ctx.testbed))
        for check in report.checks:
            ctx.note(f"{check.title}: {check.value} ({check.verdict})")
        ctx.finding(self.node, report.to_json())
        ctx.finding("window", self.window)
        if report.error:
            return f"not read: {report.error}"
        return f"{report.verdict}: " + ", ".join(f"{c.name} {c.verdict}" for c in report.checks if c.at_risk)
