"""The CLI picks the TUI on a terminal, plain lines elsewhere; --tui/--no-tui force either, for a
run and for a sweep."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from connreset.ui import cli

BACKEND = [
    "--cluster",
    "connreset.testing:memory_cluster",
    "--node-access",
    "connreset.testing:memory_access",
]
LONG = """
from connreset import *
experiment = Experiment.single(
    "long",
    Deploy("app", workloads.command(["true"]), replicas=2) >> (Observe(1.3, every=0.1) | Scale("app", 4)),
)
"""


SWEEP = """
from connreset import *
from connreset.sweep import Sweep

def experiment(*, max_: int = 256) -> Experiment:
    async def verdict(ctx):
        ctx.finding("fits", max_ >= 1000)

    steps = SetSysctl("nf_conntrack_max", max_) >> Call(verdict, name="verdict")
    if max_ == 256:  # the first trial has a long step
        steps = Observe(1.3, every=0.1) >> steps
    return Experiment.single("fits", steps)

sweep = Sweep(
    name="fits",
    experiment=experiment,
    vary="max_",
    space=range(256, 256 + 64 * 64, 64),
    holds=lambda r: r.findings["main"]["fits"] is True,
    repeats=0,  # one run per value: this is about the output, not the confirmations
)
"""


@pytest.fixture
def chosen(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which output the CLI chose: "tui" (the app is not started) or "plain"."""
    picks: list[str] = []

    def tui(*args: Any) -> int:
        picks.append("tui")
        return 0

    monkeypatch.setattr(cli, "_run_tui", tui)
    monkeypatch.setattr(cli, "_sweep_tui", tui)
    return picks


@pytest.mark.parametrize(
    ("flags", "tty", "want"),
    [([], True, ["tui"]), ([], False, []), (["--tui"], False, ["tui"]), (["--no-tui"], True, [])],
)
def test_tui_on_a_terminal_unless_told(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    chosen: list[str],
    flags: list[str],
    tty: bool,
    want: list[str],
) -> None:
    exp = tmp_path / "x.py"
    exp.write_text(
        "from connreset import *\nexperiment = Experiment.single('x', SetSysctl('nf_conntrack_max', 1200))\n"
    )
    monkeypatch.setattr("sys.stdout.isatty", lambda: tty)
    assert cli.main([str(exp), *BACKEND, "--journal", str(tmp_path / "j.json"), *flags]) == 0
    assert chosen == want


def test_without_the_tui_long_steps_print_progress(
    tmp_path: Path, chosen: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    exp = tmp_path / "long.py"
    exp.write_text(LONG)
    assert cli.main([str(exp), *BACKEND, "--journal", str(tmp_path / "j.json"), "--no-tui"]) == 0
    out = capsys.readouterr().out
    progress = [line for line in out.splitlines() if line.startswith("    … observe 1.3s: ")]
    assert progress, out
    assert progress[0].endswith("s  conntrack count node-1 0/262144, node-2 0/262144")
    assert chosen == []


@pytest.mark.parametrize(
    ("flags", "tty", "want"),
    [([], True, ["tui"]), (["--tui"], False, ["tui"]), (["--no-tui"], True, [])],
)
def test_a_sweep_too_shows_the_tui_on_a_terminal_unless_told(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    chosen: list[str],
    flags: list[str],
    tty: bool,
    want: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # the sweep's example database
    (tmp_path / "s.py").write_text(SWEEP)
    monkeypatch.setattr("sys.stdout.isatty", lambda: tty)
    assert cli.main(["sweep", "s.py", *BACKEND, "--seed", "1", "--max-trials", "2", *flags]) == 0
    assert chosen == want


def test_without_the_tui_a_sweep_prints_each_trial_the_boundary_so_far_and_long_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chosen: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.py").write_text(SWEEP)
    assert cli.main(["sweep", "s.py", *BACKEND, "--seed", "1", "--out", "out", "--no-tui"]) == 0
    assert chosen == []
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("sweep fits: the sweep takes at most 8 run(s)")  # how long, first
    at = lines.index("max_ over 256…4288 (64 values) for 1 workload(s) on memory")
    # F10: a killed sweep named no trial journal to restore
    assert (
        lines[at + 1] == "trial journals: out/journals (if the sweep is killed: connreset restore the newest)"
    )
    sweep = [line for line in lines if line.startswith("◆ sweep ")]
    trials = json.loads((tmp_path / "out/results.json").read_text())["trials"]
    assert len(sweep) == len(trials) + 1 == 9
    assert sweep[0] == "◆ sweep 0/8: now max_=256"
    # each trial's outcome is on the next line, with the boundary so far
    for line, trial in zip(sweep[1:], trials, strict=True):
        verdict = "holds" if trial["holds"] else "fails"
        assert re.match(
            rf"◆ sweep \d/\d: max_={trial['params']['max_']}: {verdict} \[\d+\.\ds\]; boundary", line
        )
    assert sweep[2].endswith(
        "; boundary so far: max_ 256 fails, 4288 holds (searching between); now max_=2304"
    )
    assert sweep[-1].startswith("◆ sweep 8/8: max_=960: fails [")
    assert sweep[-1].endswith("; boundary: max_ 960 fails, 1024 holds")
    progress = [line for line in lines if line.startswith("    … observe 1.3s: ")]
    assert progress and progress[0].endswith("s  conntrack count node-1 0/262144, node-2 0/262144")
    assert not [line for line in lines if "verdict [" in line]  # a trial's steps only with -v
    assert "recommendation: the defaults: max_ ≥ 1024" in out
