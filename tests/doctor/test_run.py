"""The doctor's run: a read-only plan the engine can prove read-only, its report and its JSON.

The node side here is connreset.testing's in-memory test double (the engine's part is what is
tested); the real kernel is read in test_lab.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import attrs
import jsonschema
import pytest

from connreset.doctor import DoctorReport, doctor, doctor_plan, schema
from connreset.doctor.checks import evaluate
from connreset.engine.runner import run_on
from connreset.errors import ValidationError
from connreset.experiment import Experiment, Phase
from connreset.experiment.plan import build
from connreset.steps import SetSysctl, Step, StepContext
from connreset.testing import testbed
from tests.doctor.facts import facts


def test_the_doctors_plan_is_read_only() -> None:
    plan = doctor_plan(["node-1", "node-2"], 3.0)
    assert plan.read_only
    assert [f.step.mutating for p in plan.phases for f in p.steps] == [False, False]
    mutating = build(Experiment("x", [Phase("p", [SetSysctl("nf_conntrack_tcp_be_liberal", "1")])]))
    assert not mutating.read_only


@attrs.frozen(kw_only=True)
class _Sneaky(Step):
    """Says it changes nothing, then tries to."""

    kind: ClassVar[str] = "sneaky"

    async def run(self, ctx: StepContext) -> str | None:
        [node] = ctx.nodes(["node-1"])
        await ctx.set_sysctl(node, "nf_conntrack_tcp_be_liberal", "1")
        return None


async def test_the_engine_refuses_any_change_in_a_read_only_plan() -> None:
    tb = testbed(nodes=1)
    plan = build(Experiment("ro", [Phase("p", [_Sneaky()])]))
    assert plan.read_only
    async with tb:
        result = await run_on(tb, plan, watchdog_lease=None)
    [step] = result.steps
    assert step.status == "error" and "the plan is read-only; refused: sysctl" in step.detail
    assert tb.access.sysctl("node-1", "nf_conntrack_tcp_be_liberal") == "0"
    assert not [c for c in tb.access.calls if c[0] == "write_file"]


async def test_doctor_writes_nothing_and_its_json_follows_the_schema() -> None:
    tb = testbed(nodes=2)
    report = await doctor(tb, window=0.2)
    assert [n.node for n in report.nodes] == ["node-1", "node-2"]
    assert not [c for c in tb.access.calls if c[0] == "write_file"]
    doc = json.loads(report.dumps())
    jsonschema.validate(doc, schema())
    assert DoctorReport.from_json(doc) == report


def test_a_full_report_follows_the_schema() -> None:
    saturated = facts(
        node="node-2",
        sysctls={"net.netfilter.nf_conntrack_max": "1200", "net.netfilter.nf_conntrack_buckets": "150"},
        counts=(1200,),
    )
    report = DoctorReport(
        "kubernetes",
        10.0,
        "2026-12-06T16:00:00Z",
        [evaluate(facts()), evaluate(saturated)],
        {"mode": "iptables", "conntrack": {"min": 131072}},
        "20261206t160000-abcdef",
        ["namespace connreset-x and one debug pod per node"],
    )
    doc = report.to_json()
    jsonschema.validate(doc, schema())
    assert set(doc["exposed"]) == {"invalid-reset", "table-full", "hash-chains"}
    bad = {**doc, "exit_code": 7}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema())


async def test_an_invalid_window_is_refused_before_anything_opens() -> None:
    tb = testbed(nodes=1)
    with pytest.raises(ValidationError, match="window must be a finite number of seconds > 0"):
        await doctor(tb, window=0)
    assert tb.access.calls == []


async def test_connreset_report_renders_a_doctor_result(tmp_path: Path) -> None:
    from connreset.ui.report import report as render_report

    journal = tmp_path / "doctor.json"
    found = await doctor(testbed(nodes=2), window=0.2, journal=journal)
    out = tmp_path / "doctor.json.out"
    out.write_text(found.dumps())
    for path in (out, journal):  # its --json, and its run's journal
        text = render_report(path, tmp_path / "r.html")
        assert "node-1" in text and "node-2" in text and "doctor on memory" in text, path
        assert "connreset doctor on memory" in (tmp_path / "r.html").read_text()
