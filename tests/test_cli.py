"""The command line, in process, with the test double backend."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from connreset.cli import main
from connreset.journal import read
from tests import support

ROOT = Path(__file__).parent.parent
BACKEND = "tests.support:factory"


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[support.FakeBackend]:
    instances: list[support.FakeBackend] = []

    def factory(**options: str) -> support.FakeBackend:
        backend = support.FakeBackend(**{k: int(v) for k, v in options.items()})
        instances.append(backend)
        return backend

    monkeypatch.setattr(support, "factory", factory)
    return instances


def test_help_works() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "connreset", "--help"], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert "run" in out.stdout and "lab" in out.stdout and "restore" in out.stdout


def test_dry_run_prints_the_plan_and_touches_nothing(
    made: list[support.FakeBackend], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([str(ROOT / "experiments/blog_repro.py"), "--dry-run", "--backend", BACKEND])
    out = capsys.readouterr().out
    assert code == 0
    assert "node-1  net.netfilter.nf_conntrack_max  262144 → 1200 (host-global)" in out
    assert "phase saturate" in out and "phase fix" in out
    (backend,) = made
    assert not backend.opened
    assert all(c[0] == "read_sysctl" for c in backend.calls)


def test_validation_error_exits_2_before_any_backend_call(
    tmp_path: Path, made: list[support.FakeBackend], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.py"
    path.write_text(
        "from connreset import *\nexperiment = Experiment.single('x',\n"
        "    SetSysctl('nf_conntrack_max', 0))\n"
    )
    assert main([str(path), "--backend", BACKEND]) == 2
    assert f"{path}:3" in capsys.readouterr().err
    assert made == []


def test_bad_parameter_exits_2(made: list[support.FakeBackend], capsys: pytest.CaptureFixture[str]) -> None:
    code = main([str(ROOT / "experiments/issue_74839.py"), "--set", "fix=maybe", "--backend", BACKEND])
    assert code == 2
    assert "must be one of" in capsys.readouterr().err
    assert made == []


def test_run_passes_and_prints_a_verdict_table(
    tmp_path: Path, made: list[support.FakeBackend], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ok.py"
    path.write_text(
        "from connreset import *\nexperiment = Experiment('ok', [\n"
        "  Phase('first', SetSysctl('nf_conntrack_max', 1200)),\n"
        "  Phase('second', ApplyFix('be-liberal'))])\n"
    )
    code = main([str(path), "--backend", BACKEND, "--journal", str(tmp_path / "j.json")])
    out = capsys.readouterr().out
    assert code == 0
    assert "first   PASSED" in out and "second  PASSED" in out
    assert "3/3 change(s) put back and verified" in out
    assert made[0].host_sysctls["net.netfilter.nf_conntrack_max"] == "262144"


def test_failed_expectation_exits_1(tmp_path: Path, made: list[support.FakeBackend]) -> None:
    path = tmp_path / "fail.py"
    path.write_text(
        "from connreset import *\nexperiment = Experiment.single('f',\n"
        "  Deploy('app', workloads.command(['true'])) >> AssertLogs('app', pattern='x', within=0.2))\n"
    )
    assert main([str(path), "--backend", BACKEND, "--journal", str(tmp_path / "j.json")]) == 1


def test_unknown_backend_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(ROOT / "experiments/issue_74839.py"), "--backend", "nope"]) == 2
    assert "unknown backend 'nope'" in capsys.readouterr().err


def test_plugins_lists_the_lab(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins"]) == 0
    assert "lab" in capsys.readouterr().out


INTERRUPTIBLE = """
import asyncio, os
from connreset import *

async def ready(ctx):
    os.write(2, b"ready\\n")
    await asyncio.Event().wait()

steps = SetSysctl("nf_conntrack_max", 1200) >> ApplyFix("be-liberal") >> Call(ready)
experiment = Experiment.single("sig", steps)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_undoes_then_exits_130(tmp_path: Path, sig: signal.Signals) -> None:
    path = tmp_path / "sig.py"
    path.write_text(INTERRUPTIBLE)
    journal = tmp_path / "j.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "connreset", str(path), "--backend", BACKEND, "--journal", str(journal)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    assert proc.stderr.readline() == b"ready\n"
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == 130
    doc = read(journal)
    assert doc["cancelled"] is True and doc["outcome"] == "error"
    assert [(u["action"], u["status"], u["verified"]) for u in doc["undo"]] == [("sysctl", "done", True)] * 3
    assert [s["status"] for s in doc["steps"]] == ["ok", "ok", "cancelled"]


def test_restore_replays_what_a_killed_run_left_pending(tmp_path: Path) -> None:
    """A run killed with -9 leaves its undo in the journal; `connreset restore` puts it back."""
    path, journal, state = tmp_path / "k.py", tmp_path / "j.json", tmp_path / "host.json"
    path.write_text(INTERRUPTIBLE)
    backend = ["--backend", BACKEND, "--backend-opt", f"state={state}"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "connreset", str(path), *backend, "--journal", str(journal)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    assert proc.stderr.readline() == b"ready\n"
    proc.kill()
    proc.wait()
    assert json.loads(state.read_text())["net.netfilter.nf_conntrack_max"] == "1200"
    out = subprocess.run(
        [sys.executable, "-m", "connreset", "restore", str(journal), *backend],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "✓ node-1: net.netfilter.nf_conntrack_max=262144" in out.stdout
    assert json.loads(state.read_text())["net.netfilter.nf_conntrack_max"] == "262144"


def test_step_the_backend_cannot_do_names_file_and_step(
    tmp_path: Path,
    made: list[support.FakeBackend],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(support.FakeBackend, "capabilities", frozenset({"sysctl"}))
    path = tmp_path / "cap.py"
    path.write_text(
        "from connreset import *\nexperiment = Experiment.single('x', ApplyFix('drop-invalid'))\n"
    )
    assert main([str(path), "--backend", BACKEND]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "step 'fix drop-invalid'" in err and "cannot do apply-fix" in err
    assert made[0].calls == []
