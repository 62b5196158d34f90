"""Claims: judged against a run's findings, on the console, in the journal and in the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from connreset import Call, Experiment, Phase, StepContext, ValidationError, run_sync
from connreset.experiment.claims import (
    Claim,
    Conclusion,
    Findings,
    Judgement,
    claims_table,
    confirmed,
    refuted,
)
from connreset.runs.journal import read
from connreset.testing import testbed
from connreset.ui.console import verdict_table
from connreset.ui.report import html_report, markdown


async def drops(ctx: StepContext) -> None:
    ctx.finding("drop", {"node-1": 526, "node-2": 0})
    ctx.finding("curl_errors", {"28 timeout": 50, "56 recv reset": 0})


def resets(f: Findings) -> Judgement:
    codes = f.get("full", "curl_errors")
    drops = int(f.number("full", "drop"))
    words = f"{drops} drops → {codes['28 timeout']} timeouts, {codes['56 recv reset']} resets"
    return confirmed(words) if codes["56 recv reset"] else refuted(words)


def experiment() -> Experiment:
    return Experiment(
        "claims",
        [Phase("full", Call(drops), expect="drops, no resets"), Phase("fix", Call(drops, name="again"))],
        description="A table that fills.",
        claims=[
            Claim("a full table resets connections", "Connection reset by peer", "full", resets),
            Claim("never measured", "", "fix", lambda f: confirmed(str(f.get("fix", "absent")))),
            Claim("a broken check", "", "full", lambda f: confirmed(str(1 // 0))),
        ],
        conclusions=[Conclusion("full", lambda f: f"{int(f.number('full', 'drop', 'node-1'))} dropped")],
    )


def test_claims_are_judged_with_their_evidence_and_never_fail_the_run(tmp_path: Path) -> None:
    result = run_sync(experiment(), testbed(), journal=tmp_path / "j.json")
    assert result.passed
    verdicts = [(c.claim, c.verdict, c.evidence) for c in result.claims]
    assert verdicts == [
        ("a full table resets connections", "refuted", "526 drops → 50 timeouts, 0 resets"),
        ("never measured", "not seen", "phase fix recorded no absent"),
        (
            "a broken check",
            "not seen",
            "the check failed: ZeroDivisionError: integer division or modulo by zero",
        ),
    ]
    assert result.conclusions == {"full": "526 dropped"}


def test_the_console_journal_and_report_show_the_claims(tmp_path: Path) -> None:
    result = run_sync(experiment(), testbed(), journal=tmp_path / "j.json")
    table = verdict_table(result)
    assert "REFUTED     full   a full table resets connections" in table
    assert "→ 526 drops → 50 timeouts, 0 resets" in table
    assert "⇒ 526 dropped" in table
    words = " ".join(table.split())
    assert "curl codes: (7) could not connect" in words and "(28) connect timeout" in words
    doc = read(tmp_path / "j.json")
    assert doc["claims"][0] == {
        "claim": "a full table resets connections",
        "quote": "Connection reset by peer",
        "phase": "full",
        "verdict": "refuted",
        "evidence": "526 drops → 50 timeouts, 0 resets",
    }
    assert doc["phases"][0]["conclusion"] == "526 dropped"
    assert doc["phases"][0]["expect"] == "drops, no resets"
    assert doc["description"] == "A table that fills."
    assert (
        "| a full table resets connections | full | REFUTED | 526 drops → 50 timeouts, 0 resets |"
        in markdown(doc)
    )
    page = html_report(doc)
    assert '<h2 id="claims">Claims</h2>' in page
    assert '<span class="claim-refuted">REFUTED</span>' in page
    assert '<p class="conclusion">526 dropped</p>' in page


def test_a_claim_on_an_unknown_phase_is_refused_before_anything_runs() -> None:
    exp = Experiment("c", [Phase("a", Call(drops))], claims=[Claim("x", "", "b", lambda f: confirmed(""))])
    with pytest.raises(ValidationError, match="a claim names unknown phase 'b'"):
        exp.compile()


def test_an_empty_claims_table_is_empty() -> None:
    assert claims_table([]) == ""
