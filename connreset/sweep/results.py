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

SCHEMA_VERSION = 1


@attrs.frozen
class SweepResult:
    """Every trial, each workload's boundary, and what the sweep recommends.

    ``interrupted``: the sweep was stopped; its boundaries are as far as the trials that ended
    settle them (the others are marked incomplete), and it recommends only from settled ones.
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

    @property
    def exit_code(self) -> int:
        """0 done; 1 a confirmation run did not come out as expected; 130 interrupted."""
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
        }


def recommend(spec: Sweep, boundaries: Sequence[Boundary]) -> tuple[Mapping[str, object], ...]:
    out = []
    for b in boundaries:
        fields: dict[str, object] = {"workload": dict(b.workload)}
        if spec.recommend is not None:
            fields.update(spec.recommend(b.workload, b.last_failing, b.first_holding))
        else:
            fields[spec.vary] = b.first_holding
            fields["line"] = f"{_words(b.workload)}: {spec.vary} {_side(spec)} {b.first_holding}"
        out.append(fields)
    return tuple(out)


def _side(spec: Sweep) -> str:
    return "≥" if spec.holds_when == "above" else "≤"


def _words(workload: Mapping[str, object]) -> str:
    return ", ".join(f"{k}={v}" for k, v in workload.items()) or "the defaults"


def summary(spec: Sweep, result: SweepResult) -> str:
    """A table of each workload's boundary, then the recommendation lines."""
    head = f"{'WORKLOAD':<36} {'LAST FAILING':>13} {'FIRST HOLDING':>14} {'TRIALS':>7}  COMPLETE"
    rows = [head]
    for b in result.boundaries:
        rows.append(
            f"{_words(b.workload)[:36]:<36} {_num(b.last_failing):>13} {_num(b.first_holding):>14} "
            f"{b.trials:>7}  {'yes' if b.complete else 'no'}"
        )
    grid = len(spec.space) * len(spec.workloads)
    rows.append(f"{len(result.trials)} trial(s) in all; an exhaustive grid would take {grid}")
    rows += [f"recommendation: {line}" for line in result.lines]
    for c in result.confirmation:
        rows.append(f"confirmation: {c.get('line', c)}")
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
    for outcome, colour, label in ((True, "#2a9d4a", "property holds"), (False, "#d1495b", "fails")):
        xs = [float(str(t.params[spec.vary])) for t in result.trials if t.holds is outcome]
        ys = [workloads.index(_words(t.workload)) for t in result.trials if t.holds is outcome]
        ax.scatter(xs, ys, c=colour, label=label, s=40, zorder=3)
    for i, b in enumerate(result.boundaries):
        if b.last_failing is not None and b.first_holding is not None:
            x = (b.last_failing + b.first_holding) / 2
            ax.plot([x, x], [i - 0.35, i + 0.35], color="black", linewidth=2, zorder=4)
            ax.annotate(
                f"boundary {b.last_failing}…{b.first_holding}", (x, i + 0.38), ha="center", fontsize=8
            )
    ax.set_yticks(range(len(workloads)), workloads)
    ax.set_ylim(-0.6, len(workloads) - 0.3)
    ax.set_xlim(spec.space[0] - (spec.space[-1] - spec.space[0]) * 0.03, spec.space[-1] * 1.03)
    ax.set_xlabel(spec.vary)
    ax.set_title(f"sweep {spec.name}: {len(result.trials)} trials")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    paths = [out / "plot.png", out / "plot.svg"]
    for p in paths:
        fig.savefig(p)
    plt.close(fig)
    return paths
