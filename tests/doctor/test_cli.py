"""`connreset doctor` on the command line: invalid input exits 2 before anything is touched; the
dry run says what would be read and made."""

from __future__ import annotations

import pytest

from connreset.ui.cli import main


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["doctor", "--window", "0"], "--window: expected a finite number of seconds > 0"),
        (["doctor", "--window", "nan"], "--window: expected a finite number of seconds > 0"),
        (["doctor", "--cluster", "lab", "--cluster-opt", "nodes=3"], "reads the lab as it stands"),
        (["doctor", "--cluster", "no-such"], "unknown cluster backend"),
    ],
)
def test_invalid_input_exits_2_in_one_line(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str], untouchable: object
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert said in err and len(err.strip().splitlines()) == 1


def test_the_dry_run_lists_what_it_reads_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], untouchable: object
) -> None:
    assert main(["doctor", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "read-only; no sysctl, rule or file is written" in out
    assert "runs  iptables-save" in out and "/proc/net/stat/nf_conntrack" in out
