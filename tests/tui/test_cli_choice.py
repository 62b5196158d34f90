"""The CLI picks the TUI on a terminal, plain lines elsewhere; --tui/--no-tui force either."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connreset import cli

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


@pytest.fixture
def chosen(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which output the CLI chose: "tui" (the app is not started) or "plain"."""
    picks: list[str] = []

    def tui(args: Any, plan: Any, testbed: Any, journal: Path) -> int:
        picks.append("tui")
        return 0

    monkeypatch.setattr(cli, "_run_tui", tui)
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
