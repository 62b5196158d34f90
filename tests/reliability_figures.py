"""The figures of docs/reliability.md, from the lines ``nox -s reliability`` logged.

python -m tests.reliability_figures results/reliability.jsonl
"""

from __future__ import annotations

import collections
import json
import os
import sys
from pathlib import Path


def tally(kind: str, **fields: object) -> None:
    """One line per example tried, to ``$CONNRESET_FAULTS_LOG`` when set (``nox -s reliability``)."""
    path = os.environ.get("CONNRESET_FAULTS_LOG")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"kind": kind, **fields}) + "\n")


def figures(path: Path) -> str:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    out = ["| what | tried | as it should | goal |", "|---|---|---|---|"]
    kills: collections.Counter[tuple[str, str]] = collections.Counter()
    for r in rows:
        if r["kind"] == "kill":
            kills[(r["experiment"], r["recovery"])] += 1
    for (experiment, recovery), n in sorted(kills.items()):
        out.append(f"| kill -9 in `{experiment}`, then {recovery} | {n} | {n} restored | all |")
    signals = [r for r in rows if r["kind"] == "signal"]
    right = [r for r in signals if (r["code"] == 130) == r["cancelled"]]
    for name in sorted({r["signal"] for r in signals}):
        mine = [r for r in signals if r["signal"] == name]
        good = [r for r in right if r["signal"] == name]
        out.append(
            f"| {name} at a random line | {len(mine)} | {len(good)} with the right code and journal | all |"
        )
    closing = [r for r in rows if r["kind"] == "closing-undo"]
    if closing:
        slowest = max(r["seconds"] for r in closing)
        out.append(
            f"| SIGINT/SIGTERM during `issue_74839`'s first closing undo | {len(closing)} | "
            f"{sum(r['code'] == 130 for r in closing)} ended 130, no later phase "
            f"(slowest {slowest:g} s) | all |"
        )
    killed = [r for r in rows if r["kind"] == "restore-killed"]
    if killed:
        cut = sum(not r["finished"] for r in killed)
        out.append(
            f"| kill -9, then `restore` killed at a random moment (0 to 1.5 s) | {len(killed)} | "
            f"{len(killed)} restored by the watchdog ({cut} killed part-way, "
            f"{len(killed) - cut} had finished) | all |"
        )
    after = [r for r in rows if r["kind"] == "restore-after-watchdog"]
    if after:
        out.append(
            f"| `restore` after the watchdog | {len(after)} | "
            f"{sum(r['code'] == 0 for r in after)} exit 0, nothing opened or written | all |"
        )
    forged = [r for r in rows if r["kind"] == "forged"]
    if forged:
        out.append(
            f"| forged or corrupt journals | {len(forged)} | "
            f"{sum(r['code'] == 2 and r['untouched'] for r in forged)} refused, exit 2, nothing built | all |"
        )
    leaks = [r for r in rows if r["kind"] == "leak"]
    left = sum(r["namespaces"] + r["veths"] + r["processes"] + r["sysctls"] for r in leaks)
    out.append(
        f"| lab runs in a row | {len(leaks)} | {left} namespaces, veths, processes or sysctls left | 0 |"
    )
    lines = sorted(
        {r["line"] for r in rows if r["kind"] in ("kill", "signal", "restore-killed", "closing-undo")}
    )
    out.append("")
    out.append(f"Moments tried (printed lines): {', '.join(map(str, lines))}.")
    return "\n".join(out)


if __name__ == "__main__":
    print(figures(Path(sys.argv[1])))
