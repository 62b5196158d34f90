"""A sweep's results: ``results.json``, a summary table, and the plot (``plot.png``, ``plot.svg``)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from connreset._support.private import private_dir
from connreset.sweep.search import Boundary
from connreset.sweep.spec import Sweep, Trial

SCHEMA_VERSION = 2


@attrs.frozen
class SweepResult:
    """Every trial, each workload's boundary, and what the sweep recommends.

    ``interrupted``: the sweep was stopped; its boundaries are as far as the trials that ended
    settle them (the others are marked incomplete), and it recommends only from settled ones.
    ``cut``: why the sweep ended before it was done (its time or trial budget ran out; a
    confirmation that did not fit), "" if it was not; a cut sweep still exits 0.
    """

    sweep: str
    vary: str
    trials: tuple[Trial, ...]
    boundaries: tuple[Boundary, ...]
    recommendation: tuple[Mapping[str, object], ...]
    settings: Mapping[str, object] = attrs.field(factory=dict)
    confirmation: tuple[Mapping[str, object], ...] = ()
    out: str | None = None
    interrupted: bool = False
    cut: str = ""

    @property
    def exit_code(self) -> int:
        """0 done (or cut by its budget); 1 a confirmation run did not come out as expected;
        130 interrupted."""
        if self.interrupted:
            return 130
        return 0 if all(c.get("as_expected") for c in self.confirmation) else 1

    @property
    def lines(self) -> list[str]:
        """The recommendation, in words."""
        return [str(r["line"]) for r in self.recommendation if "line" in r]

    def to_json(self, spec: Sweep) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "sweep": self.sweep,
            "description": spec.description,
            "vary": self.vary,
            "space": {"min": spec.space[0], "max": spec.space[-1], "values": len(spec.space)},
            "holds_when": spec.holds_when,
            "metric": spec.metric_name,
            "settings": dict(self.settings),
            "trials": [t.to_json() for t in self.trials],
            "boundaries": [b.to_json() for b in self.boundaries],
            "recommendation": [dict(r) for r in self.recommendation],
            "confirmation": [dict(c) for c in self.confirmation],
            "interrupted": self.interrupted,
            "cut": self.cut,
        }


def recommend(
    spec: Sweep, boundaries: Sequence[Boundary], trials: Sequence[Trial] = ()
) -> tuple[Mapping[str, object], ...]:
    """One entry per boundary, with its ``confidence``. Only a confirmed boundary gives a
    recommendation; any other says where the boundary lies as far as is known, and what to rerun
    (``rerun``) to confirm it."""
    out = []
    for b in boundaries:
        fields: dict[str, object] = {"workload": dict(b.workload), "confidence": b.confidence}
        if b.confidence != "confirmed":
            rerun = advice(spec, b, trials)
            fields.update(
                {
                    spec.vary: None,
                    "known": {"last_failing": b.last_failing, "first_holding": b.first_holding},
                    "why": b.why,
                    "rerun": rerun,
                    "line": f"{_words(b.workload)}: no recommendation, the boundary is {b.confidence} "
                    f"({_known(spec, b)}): rerun {rerun}"
                    if b.trials
                    else f"{_words(b.workload)}: not searched (the budget ran out first): rerun {rerun}",
                }
            )
        elif spec.recommend is not None:
            fields.update(spec.recommend(b.workload, b.last_failing, b.first_holding))
            fields["confidence"] = b.confidence
        else:
            fields[spec.vary] = b.first_holding
            fields["line"] = f"{_words(b.workload)}: {spec.vary} {_side(spec)} {b.first_holding}"
        out.append(fields)
    return tuple(out)


def advice(spec: Sweep, b: Boundary, trials: Sequence[Trial]) -> str:
    """What to rerun to confirm a boundary that is not: from why its values were inconclusive."""
    mine = [t for t in trials if dict(t.workload) == dict(b.workload)]
    noisy = [t for t in mine if t.holds is None and "noisy" in t.why]
    close = [t for t in mine if t.holds is None and ("straddle" in t.why or "close" in t.why)]
    disagree = "disagree" in b.why
    cut = "cut" in b.why or "budget" in b.why or not b.complete
    said = []
    if noisy:
        noises = [t.noise for t in noisy if t.noise is not None]
        seen = f"baseline noise up to {max(noises):.0%} in " if noises else ""
        said.append(f"on a quieter machine ({seen}{len(noisy)} run(s) too noisy)")
    if disagree:
        said.append(f"with more repeats (--repeats {max(2, (spec.repeats or 1) + 1)})")
    if close:
        said.append("with a longer window (more blocks per trial: a tighter spread)")
    if cut:
        said.append("with a larger --time-budget (the search was cut)")
    return " or ".join(said) or "on a quieter machine or with more repeats"


def _known(spec: Sweep, b: Boundary) -> str:
    fails = "-" if b.last_failing is None else str(b.last_failing)
    holds = "-" if b.first_holding is None else str(b.first_holding)
    between = f", inconclusive at {', '.join(map(str, b.inconclusive))}" if b.inconclusive else ""
    return f"{spec.vary} {fails} fails, {holds} holds{between}"


def _side(spec: Sweep) -> str:
    return "≥" if spec.holds_when == "above" else "≤"


def _words(workload: Mapping[str, object]) -> str:
    return ", ".join(f"{k}={v}" for k, v in workload.items()) or "the defaults"


def summary(spec: Sweep, result: SweepResult) -> str:
    """A table of each workload's boundary and its confidence, then the recommendation lines."""
    head = (
        f"{'WORKLOAD':<36} {'LAST FAILING':>13} {'FIRST HOLDING':>14} {'TRIALS':>7}  "
        f"{'COMPLETE':<8}  CONFIDENCE"
    )
    rows = [head]
    for b in result.boundaries:
        rows.append(
            f"{_words(b.workload)[:36]:<36} {_num(b.last_failing):>13} {_num(b.first_holding):>14} "
            f"{b.trials:>7}  {'yes' if b.complete else 'no':<8}  {b.confidence}"
        )
        if b.confidence != "confirmed" and b.why:
            rows.append(f"  why: {b.why}")
    grid = len(spec.space) * len(spec.workloads)
    unsure = sum(1 for t in result.trials if t.holds is None)
    noises = [t.noise for t in result.trials if t.noise is not None]
    rows.append(
        f"{len(result.trials)} trial run(s) in all, confirmations included; an exhaustive grid would "
        f"take {grid} single runs"
        + (f"; {unsure} run(s) inconclusive" if unsure else "")
        + (f"; baseline noise {min(noises):.0%}…{max(noises):.0%}" if noises else "")
    )
    rows += [f"recommendation: {line}" for line in result.lines]
    for c in result.confirmation:
        rows.append(f"confirmation: {c.get('line', c)}")
    if result.cut:
        rows.append(f"cut: {result.cut}")
    if result.interrupted:
        rows.append(
            "interrupted: boundaries are as far as the trials that ended settle them; "
            "recommendations only from complete ones"
        )
    return "\n".join(rows)


def _num(value: int | None) -> str:
    return "-" if value is None else str(value)


def write(spec: Sweep, result: SweepResult, out: Path) -> list[Path]:
    """``results.json``, ``plot.png`` and ``plot.svg`` in ``out`` (made 0700)."""
    private_dir(out)
    path = out / "results.json"
    tmp = out / f".results.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(result.to_json(spec), indent=1))
    os.replace(tmp, path)
    return [path, *plot(spec, result, out)]


def plot(spec: Sweep, result: SweepResult, out: Path) -> list[Path]:
    """Each trial as a point (value of the searched parameter × workload), coloured by outcome,
    with each workload's boundary drawn."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    workloads = [_words(w) for w in spec.workloads]
    fig, ax = plt.subplots(figsize=(9, 1.6 + 0.6 * len(workloads)))
    kinds = (
        (True, "#2a9d4a", "o", "property holds"),
        (False, "#d1495b", "o", "fails"),
        (None, "#8a8a8a", "x", "inconclusive"),
    )
    for outcome, colour, marker, label in kinds:
        chosen = [t for t in result.trials if t.holds is outcome]
        if not chosen and outcome is None:
            continue
        # a value's confirming runs are drawn a little above its first
        xs = [float(str(t.params[spec.vary])) for t in chosen]
        ys = [workloads.index(_words(t.workload)) + 0.12 * t.run for t in chosen]
        ax.scatter(xs, ys, c=colour, marker=marker, label=label, s=40, zorder=3)
    for i, b in enumerate(result.boundaries):
        if b.last_failing is not None and b.first_holding is not None:
            x = (b.last_failing + b.first_holding) / 2
            style = "-" if b.confidence == "confirmed" else ":"
            ax.plot([x, x], [i - 0.35, i + 0.35], color="black", linewidth=2, linestyle=style, zorder=4)
            ax.annotate(
                f"boundary {min(b.last_failing, b.first_holding)}…{max(b.last_failing, b.first_holding)}"
                f" ({b.confidence})",
                (x, i + 0.38),
                ha="center",
                fontsize=8,
            )
    ax.set_yticks(range(len(workloads)), workloads)
    ax.set_ylim(-0.6, len(workloads) - 0.3)
    ax.set_xlim(spec.space[0] - (spec.space[-1] - spec.space[0]) * 0.03, spec.space[-1] * 1.03)
    ax.set_xlabel(spec.vary)
    unsure = sum(1 for t in result.trials if t.holds is None)
    ax.set_title(
        f"sweep {spec.name}: {len(result.trials)} runs" + (f", {unsure} inconclusive" if unsure else "")
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    paths = [out / "plot.png", out / "plot.svg"]
    for p in paths:
        fig.savefig(p)
    plt.close(fig)
    return paths
