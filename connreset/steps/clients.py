"""Client errors as curl reports them: its exit codes, counted per code from the clients' logs.

The lab's simple-app client (and the blog's ``curl -sS`` loop) writes one ``curl: (CODE) ...``
line per failed transfer. :class:`CountCurlErrors` counts them per code, and the successful
transfers from the client's tally lines, so a phase says how many transfers failed and *how*:
a connect timeout (28) is not a reset (55, 56).
"""

from __future__ import annotations

import re

import attrs

from connreset.steps.base import Step, StepContext
from connreset.steps.cluster import _dns_label

#: curl's exit codes that connection trouble produces, with what each means.
CURL_CODES: dict[int, str] = {
    7: "refused",
    28: "timeout",
    52: "empty reply",
    55: "send reset",
    56: "recv reset",
    18: "partial",
}
MEANING: dict[int, str] = {
    7: "could not connect: refused or unreachable (no endpoint, REJECT)",
    28: "connect timeout: no answer to the SYN (dropped, e.g. by a full conntrack table)",
    52: "empty reply: closed before any byte of the reply",
    55: "send failure: reset while sending the request",
    56: "recv failure: reset (or another error, in its own words) while reading the reply",
    18: "partial: the connection closed before the whole reply came",
}
ANY_CODE = re.compile(r"^curl: \((\d+)\)")
#: The blog's symptom, exactly: a reset while receiving.
RESET_LINE = re.compile(r"^curl: \((?:55|56)\) \w+ failure: Connection reset by peer")
TALLY = re.compile(r"^simple-app: ok=(\d+) failed=(\d+)")


def key(code: int) -> str:
    """The finding key of a code: ``"28 timeout"``."""
    return f"{code} {CURL_CODES.get(code, 'other')}"


def legend() -> str:
    """What each code means, one line per code (for the console and the report)."""
    return "; ".join(f"({c}) {MEANING[c]}" for c in CURL_CODES)


@attrs.frozen
class CountCurlErrors(Step):
    """Count a client deployment's failed transfers per curl exit code since the last count.

    Findings: ``record`` (``curl_errors``), a dict of every code in :data:`CURL_CODES` (zeros
    included) and any other code seen, e.g. ``{"7 refused": 0, "28 timeout": 50, ...}``;
    ``<record>_resets``, the lines that say ``Connection reset by peer``; and ``transfers_ok``
    (``<record>_ok`` for another ``record``), the successful transfers the clients' tally lines
    report.
    """

    kind = "count-curl-errors"
    requires = frozenset({"cluster", "logs"})

    deployment: str = attrs.field(validator=_dns_label)
    record: str = "curl_errors"

    def default_name(self) -> str:
        return f"count {self.deployment} curl errors"

    async def run(self, ctx: StepContext) -> str:
        state = f"count-curl-errors:{self.deployment}"
        last = ctx.state.get(state, 0)
        assert isinstance(last, int)
        ctx.state[state] = ctx.logs.last_seq()
        counts = {key(c): 0 for c in CURL_CODES}
        resets = ok = 0
        for line in ctx.logs.since(self.deployment, last):
            match = ANY_CODE.match(line)
            if match:
                k = key(int(match.group(1)))
                counts[k] = counts.get(k, 0) + 1
                resets += bool(RESET_LINE.match(line))
                continue
            tally = TALLY.match(line)
            if tally:
                ok += int(tally.group(1))
        ctx.finding(self.record, counts)
        ctx.finding(f"{self.record}_resets", resets)
        ctx.finding("transfers_ok" if self.record == "curl_errors" else f"{self.record}_ok", ok)
        failed = sum(counts.values())
        shown = ", ".join(f"({k.split()[0]}) {n}" for k, n in counts.items() if n) or "none"
        return f"{ok} transfer(s) ok, {failed} failed: {shown}; {resets} said 'Connection reset by peer'"
