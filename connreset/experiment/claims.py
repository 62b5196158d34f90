"""Claims: what a source (a blog, an issue) says will happen, judged against what the run found.

A :class:`Claim` carries the claim in words, the source's own words (``quote``), the phase that
tests it, and a ``check`` over the run's findings. After a run each claim gets a verdict:

- ``confirmed``: the findings show what the claim says;
- ``refuted``: the findings show otherwise;
- ``not seen``: the run did not get far enough to tell (a phase did not run, a finding is missing).

Every verdict comes with its ``evidence``: the numbers that decided it, in words. Claims report;
they never fail a run (expectations do that). A phase may also carry a :class:`Conclusion`: one
line in plain words saying what the phase showed, computed from its findings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs

from connreset._support.logs import get_logger

log = get_logger("connreset.experiment.claims")

Verdict = Literal["confirmed", "refuted", "not seen"]
VERDICTS: tuple[Verdict, ...] = ("confirmed", "refuted", "not seen")


class Missing(KeyError):
    """A finding the check needs is not there: the claim is ``not seen``."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "a finding is missing"


class Findings:
    """A run's findings (phase → key → value), read by claim checks.

    Reading a phase or a key that is not there raises :class:`Missing`, which makes the claim
    ``not seen`` rather than an error.
    """

    def __init__(self, findings: Mapping[str, Mapping[str, object]]) -> None:
        self._findings = findings

    def phase(self, phase: str) -> Mapping[str, object]:
        found = self._findings.get(phase)
        if not found:
            raise Missing(f"phase {phase} recorded nothing (it did not run?)")
        return found

    def get(self, phase: str, key: str) -> Any:
        found = self.phase(phase)
        if key not in found:
            raise Missing(f"phase {phase} recorded no {key}")
        return found[key]

    def number(self, phase: str, key: str, node: str | None = None) -> float:
        """A number, or one node's number from a per-node finding (with ``node=None``: their sum)."""
        value = self.get(phase, key)
        if isinstance(value, Mapping):
            if node is not None:
                if node not in value:
                    raise Missing(f"phase {phase} recorded no {key} for {node}")
                value = value[node]
            else:
                return float(sum(_as_number(phase, key, v) for v in value.values()))
        return _as_number(phase, key, value)

    def has(self, phase: str, key: str) -> bool:
        return key in self._findings.get(phase, {})


def _as_number(phase: str, key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Missing(f"phase {phase} recorded {key} = {value!r}, not a number")
    return float(value)


@attrs.frozen
class Judgement:
    """A claim's verdict and the numbers that decided it."""

    verdict: Verdict = attrs.field(validator=attrs.validators.in_(VERDICTS))
    evidence: str


def confirmed(evidence: str) -> Judgement:
    return Judgement("confirmed", evidence)


def refuted(evidence: str) -> Judgement:
    return Judgement("refuted", evidence)


def not_seen(evidence: str) -> Judgement:
    return Judgement("not seen", evidence)


Check = Callable[[Findings], Judgement]


@attrs.frozen
class Claim:
    """What a source claims, and how the run's findings confirm or refute it.

    Args:
        text: the claim, in words of our own ("saturation makes clients log resets").
        quote: the source's words, verbatim.
        phase: the phase that tests it.
        check: ``check(findings) -> Judgement``; reading a missing finding makes it ``not seen``.
    """

    text: str = attrs.field(validator=attrs.validators.min_len(1))
    quote: str
    phase: str = attrs.field(validator=attrs.validators.min_len(1))
    check: Check = attrs.field(validator=attrs.validators.is_callable())

    def judge(self, findings: Mapping[str, Mapping[str, object]]) -> ClaimResult:
        try:
            judgement = self.check(Findings(findings))
        except Missing as exc:
            judgement = not_seen(str(exc))
        except Exception as exc:  # a claim reports; it never stops a run's ending
            log.warning("claim check failed", claim=self.text, error=f"{type(exc).__name__}: {exc}")
            judgement = not_seen(f"the check failed: {type(exc).__name__}: {exc}")
        return ClaimResult(self.text, self.quote, self.phase, judgement.verdict, judgement.evidence)


@attrs.frozen
class ClaimResult:
    """A judged claim, as the console, the journal (``claims: [...]``) and the report show it."""

    claim: str
    quote: str
    phase: str
    verdict: Verdict
    evidence: str

    def to_json(self) -> dict[str, str]:
        return {
            "claim": self.claim,
            "quote": self.quote,
            "phase": self.phase,
            "verdict": self.verdict,
            "evidence": self.evidence,
        }


@attrs.frozen
class Conclusion:
    """One line in plain words saying what a phase showed: ``say(findings)`` (a missing finding:
    no line)."""

    phase: str = attrs.field(validator=attrs.validators.min_len(1))
    say: Callable[[Findings], str] = attrs.field(validator=attrs.validators.is_callable())

    def line(self, findings: Mapping[str, Mapping[str, object]]) -> str | None:
        try:
            return self.say(Findings(findings))
        except Missing:
            return None
        except Exception as exc:
            log.warning("conclusion failed", phase=self.phase, error=f"{type(exc).__name__}: {exc}")
            return None


def judge(claims: Iterable[Claim], findings: Mapping[str, Mapping[str, object]]) -> tuple[ClaimResult, ...]:
    return tuple(c.judge(findings) for c in claims)


def conclude(
    conclusions: Iterable[Conclusion], findings: Mapping[str, Mapping[str, object]]
) -> dict[str, str]:
    """Each phase's conclusion line (phases whose findings did not allow one are left out)."""
    out: dict[str, str] = {}
    for c in conclusions:
        line = c.line(findings)
        if line:
            out[c.phase] = line
    return out


def from_json(entries: Sequence[Mapping[str, object]]) -> tuple[ClaimResult, ...]:
    """Judged claims back from a journal's ``claims`` list (malformed entries are skipped)."""
    out = []
    for e in entries:
        verdict = e.get("verdict")
        if verdict not in VERDICTS:
            continue
        out.append(
            ClaimResult(
                str(e.get("claim", "")),
                str(e.get("quote", "")),
                str(e.get("phase", "")),
                verdict,
                str(e.get("evidence", "")),
            )
        )
    return tuple(out)


def claims_table(results: Sequence[ClaimResult], width: int = 100) -> str:
    """The claims table: one row per claim (verdict, phase, claim), its evidence beneath it."""
    import textwrap

    if not results:
        return ""
    phase_w = max([len(r.phase) for r in results] + [5])
    head = f"{'CLAIM':<10}  {'PHASE':<{phase_w}}  WHAT THE SOURCE SAID / WHAT THIS KERNEL DID"
    indent = " " * (10 + 2 + phase_w + 2)
    lines = [head]
    for r in results:
        lines.append(f"{r.verdict.upper():<10}  {r.phase:<{phase_w}}  {r.claim}")
        if r.quote:
            lines += textwrap.wrap(f"“{r.quote}”", width, initial_indent=indent, subsequent_indent=indent)
        lines += textwrap.wrap(
            f"→ {r.evidence}", width, initial_indent=indent, subsequent_indent=indent + "  "
        )
    return "\n".join(lines)
