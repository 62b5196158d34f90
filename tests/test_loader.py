"""Loading experiment files: errors name the file and line, or the step."""

from __future__ import annotations

from pathlib import Path

import pytest

from connreset import ValidationError, load
from connreset.experiment.loader import parameters

ROOT = Path(__file__).parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.py"
    path.write_text(text)
    return path


def test_shipped_experiments_load_with_defaults() -> None:
    for name in ("blog_repro", "issue_74839"):
        loaded = load(ROOT / "experiments" / f"{name}.py")
        assert loaded.experiment.phases


def test_invalid_step_names_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "from connreset import *\n\nexperiment = Experiment.single('x',\n"
        "    SetSysctl('nf_conntrack_max', -1))\n",
    )
    with pytest.raises(ValidationError) as info:
        load(path)
    assert f"{path}:4" in str(info.value)
    assert "must be an integer from 1 to 2147483647" in str(info.value)


def test_cycle_names_file_and_step(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "from connreset import *\nexperiment = Experiment.single('x',\n"
        "    Wait(seconds=0, name='a', after=['b']) >> Wait(seconds=0, name='b'))\n",
    )
    with pytest.raises(ValidationError) as info:
        load(path)
    assert str(path) in str(info.value) and "step 'a'" in str(info.value)


def test_missing_experiment(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="defines no `experiment`"):
        load(write(tmp_path, "x = 1\n"))


@pytest.mark.parametrize(
    ("source", "message", "line"),
    [
        ("def experiment(:\n", "invalid Python", 1),
        ("from connreset import *\nexperiment = Experiment.single('x', nope)\n", "NameError: name 'nope'", 2),
        ("import no_such_module_here\n", "cannot import no_such_module_here", 1),
        ("def experiment():\n    raise RuntimeError('broken')\n", "RuntimeError: broken", 2),
    ],
)
def test_a_file_that_fails_to_load_is_one_line_naming_the_file_and_line(
    tmp_path: Path, source: str, message: str, line: int
) -> None:
    path = tmp_path / "bad.py"
    path.write_text(source)
    with pytest.raises(ValidationError) as info:
        load(path)
    assert message in str(info.value)
    assert str(info.value).startswith(f"{path}:{line}")
    assert "\n" not in str(info.value)


def test_a_missing_file_suggests_the_nearest_one_beside_it(tmp_path: Path) -> None:
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "issue_74839.py").write_text("")
    (tmp_path / "experiments" / "notes.txt").write_text("")
    with pytest.raises(ValidationError) as typo:
        load(tmp_path / "experiments" / "issue_7483.py")
    assert str(typo.value) == (
        f"no such experiment file: {tmp_path}/experiments/issue_7483.py; "
        f"did you mean {tmp_path}/experiments/issue_74839.py?"
    )
    with pytest.raises(ValidationError) as folder:
        load(tmp_path / "experiment" / "issue_74839.py")
    assert str(folder.value) == (
        f"no such experiment file: {tmp_path}/experiment/issue_74839.py; "
        f"did you mean {tmp_path}/experiments/issue_74839.py?"
    )
    with pytest.raises(ValidationError) as nothing_near:
        load(tmp_path / "experiments" / "notes.py")  # only .py files are suggested
    assert str(nothing_near.value) == f"no such experiment file: {tmp_path}/experiments/notes.py"
    with pytest.raises(ValidationError) as nowhere:
        load(tmp_path / "elsewhere" / "x.py")
    assert str(nowhere.value) == f"no such experiment file: {tmp_path}/elsewhere/x.py"


def test_a_value_the_experiment_refuses_keeps_the_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "from connreset import *\n\ndef experiment(*, observe: float = 10.0) -> Experiment:\n"
        "    return Experiment.single('x',\n        Observe(observe / 2))\n",
    )
    with pytest.raises(ValidationError) as info:
        load(path, raw={"observe": "-1"})
    assert str(info.value) == (
        f"{path}:5: parameter observe=-1 (from --set): Observe duration must be a finite number > 0, got -0.5"
    )


def test_parameters_of_a_file_for_hints(tmp_path: Path) -> None:
    assert list(parameters(ROOT / "experiments" / "issue_74839.py")) == [
        "offset",
        "fix",
        "every",
        "window",
        "require_reset",
    ]
    assert (
        parameters(
            write(tmp_path, "from connreset import *\nexperiment = Experiment.single('x', Wait(seconds=0))\n")
        )
        == {}
    )
    assert parameters(write(tmp_path, "raise SystemExit(3)\n")) == {}
    assert parameters(tmp_path / "missing.py") == {}


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("import os\nos._exit(0)\n", 2),  # F9: exit 0 with no output
        ("import posix\nfrom connreset import *\ndef experiment():\n    posix._exit(3)\n", 4),
    ],
)
def test_a_file_that_exits_the_interpreter_is_exit_2_with_a_line(
    tmp_path: Path, source: str, line: int, capsys: pytest.CaptureFixture[str]
) -> None:
    from connreset.ui.cli import main

    path = write(tmp_path, source)
    assert main([str(path), "--dry-run"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith(f"connreset: {path}:{line}: the file called os._exit(") and "while loading" in err


def test_a_file_that_never_finishes_loading_is_exit_2_after_the_load_timeout(tmp_path: Path) -> None:
    """F9: an experiment() that never returns hung even --dry-run."""
    import subprocess
    import sys

    path = write(tmp_path, "import threading\ndef experiment():\n    threading.Event().wait()\n")
    argv = [sys.executable, "-m", "connreset", str(path), "--dry-run", "--load-timeout", "0.5"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert (
        done.stderr
        == f"connreset: {path}: loading took more than 0.5s (--load-timeout); nothing was touched\n"
    )
