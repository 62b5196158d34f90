"""The command line, in process and as a process, on the test doubles of connreset.testing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from connreset import testing
from connreset.errors import ValidationError
from connreset.runs.journal import read
from connreset.ui.cli import main
from tests.conftest import Touched

ROOT = Path(__file__).parent.parent
CLUSTER = "connreset.testing:memory_cluster"
ACCESS = "connreset.testing:memory_access"
BACKEND = ["--cluster", CLUSTER, "--node-access", ACCESS]


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[testing.MemoryNodeAccess]:
    """Every node access the CLI makes (clusters are kept in ``made.clusters``)."""
    instances: list[testing.MemoryNodeAccess] = []

    def access(**options: str) -> testing.MemoryNodeAccess:
        instance = testing.MemoryNodeAccess(**options)  # type: ignore[arg-type]
        instances.append(instance)
        return instance

    monkeypatch.setattr(testing, "memory_access", access)
    return instances


def test_help_works() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "connreset", "--help"], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert "run" in out.stdout and "lab" in out.stdout and "restore" in out.stdout


def test_dry_run_prints_the_plan_and_touches_nothing(
    made: list[testing.MemoryNodeAccess], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([str(ROOT / "experiments/blog_repro.py"), "--dry-run", *BACKEND])
    out = capsys.readouterr().out
    assert code == 0
    assert "node-1  net.netfilter.nf_conntrack_max  262144 → 1200 (host-global)" in out
    for phase in (
        "scale-up",
        "scale-down",
        "check",
        "saturate",
        "deplete",
        "be-liberal",
        "drop-invalid",
        "bigger-table",
    ):
        assert f"phase {phase}\n" in out
    (access,) = made
    assert not access.opened and access.calls == []


def test_validation_error_exits_2_before_any_backend_call(
    tmp_path: Path, made: list[testing.MemoryNodeAccess], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.py"
    path.write_text(
        "from connreset import *\nexperiment = Experiment.single('x',\n"
        "    SetSysctl('nf_conntrack_max', 0))\n"
    )
    assert main([str(path), *BACKEND]) == 2
    assert f"{path}:3" in capsys.readouterr().err
    assert made == []


def test_bad_parameter_exits_2(
    made: list[testing.MemoryNodeAccess], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([str(ROOT / "experiments/issue_74839.py"), "--set", "fix=maybe", *BACKEND])
    assert code == 2
    assert "must be one of" in capsys.readouterr().err
    assert made == []


def test_run_passes_and_prints_a_verdict_table(
    tmp_path: Path, made: list[testing.MemoryNodeAccess], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ok.py"
    path.write_text(
        "from connreset import *\nexperiment = Experiment('ok', [\n"
        "  Phase('first', SetSysctl('nf_conntrack_max', 1200)),\n"
        "  Phase('second', ApplyFix('be-liberal'))])\n"
    )
    code = main([str(path), *BACKEND, "--journal", str(tmp_path / "j.json")])
    out = capsys.readouterr().out
    assert code == 0
    assert "first   PASSED" in out and "second  PASSED" in out
    assert "3/3 change(s) put back and verified" in out
    assert made[0].sysctl("node-1", "net.netfilter.nf_conntrack_max") == "262144"


def test_failed_expectation_exits_1(tmp_path: Path, made: list[testing.MemoryNodeAccess]) -> None:
    path = tmp_path / "fail.py"
    path.write_text(
        "from connreset import *\nexperiment = Experiment.single('f',\n"
        "  Deploy('app', workloads.command(['true'])) >> AssertLogs('app', pattern='x', within=0.2))\n"
    )
    assert main([str(path), *BACKEND, "--journal", str(tmp_path / "j.json")]) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cluster", "nope"], "unknown cluster backend 'nope'"),
        (["--node-access", "nope"], "unknown node access 'nope'"),
        (["--cluster", "lab", "--cluster-opt", "nodes=0"], "lab nodes must be 1..60"),
        (["--cluster", "lab", "--cluster-opt", "time_scale=nan"], "time_scale must be a finite number"),
        (
            ["--cluster", "lab", "--cluster-opt", "time_scle=0.1"],
            "cluster backend 'lab' has no option 'time_scle'; did you mean 'time_scale'? "
            "(its options: nodes, time_scale, proxy)",
        ),
    ],
)
def test_bad_testbed_choices_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(ROOT / "experiments/issue_74839.py"), *argv]) == 2
    assert message in capsys.readouterr().err


def test_plugins_lists_both_groups_with_their_distribution(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "connreset.clusters (cluster backend):" in out and "connreset.node_access (node access):" in out
    assert "connreset.lab.backend:LabBackend" in out and "connreset.lab.access:LabNodeAccess" in out
    assert "from connreset 0.1.0" in out


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
        [sys.executable, "-m", "connreset", str(path), *BACKEND, "--journal", str(journal)],
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
    backend = [*BACKEND, "--node-opt", f"state={state}"]
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
    assert _host(state)["net.netfilter.nf_conntrack_max"] == "1200"
    out = subprocess.run(
        # the journal names the testbed; code (module:factory) only if given again
        [sys.executable, "-m", "connreset", "restore", str(journal), *BACKEND],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "✓ node-1: net.netfilter.nf_conntrack_max=262144" in out.stdout
    assert _host(state)["net.netfilter.nf_conntrack_max"] == "262144"


def _host(state: Path) -> dict[str, str]:
    host: dict[str, str] = json.loads(state.read_text())["sysctl"]["host"]
    return host


def test_step_the_backend_cannot_do_names_file_and_step(
    tmp_path: Path,
    made: list[testing.MemoryNodeAccess],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(testing.MemoryNodeAccess, "capabilities", frozenset({"sysctl"}))
    path = tmp_path / "cap.py"
    path.write_text(
        "from connreset import *\nexperiment = Experiment.single('x', ApplyFix('drop-invalid'))\n"
    )
    assert main([str(path), *BACKEND]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "step 'fix drop-invalid'" in err and "cannot do apply-fix" in err
    assert made[0].calls == []


CLOSE_HANGS = """
from connreset import *

async def link_dies(ctx):
    ctx.testbed.access.hang.add("close")

experiment = Experiment.single("late", SetSysctl("nf_conntrack_max", 1200) >> Call(link_dies))
"""


def test_a_signal_during_teardown_ends_in_130_and_the_journal_says_cancelled(tmp_path: Path) -> None:
    path, journal = tmp_path / "late.py", tmp_path / "j.json"
    path.write_text(CLOSE_HANGS)
    argv = [sys.executable, "-m", "connreset", str(path), *BACKEND, "--journal", str(journal)]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    while "↶" not in proc.stdout.readline():  # the undo is done: closing comes next, and hangs
        pass
    proc.send_signal(signal.SIGINT)
    assert proc.stderr.readline().startswith("interrupted: putting everything back")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "outcome: passed" not in out
    doc = read(journal)
    assert doc["cancelled"] is True and doc["outcome"] == "error"
    assert [(u["status"], u["verified"]) for u in doc["undo"]] == [("done", True)]


HELD_SWEEP = """
import asyncio, os
from connreset import *
from connreset.sweep import Sweep

def experiment(*, max_: int = 256) -> Experiment:
    async def verdict(ctx):
        if max_ == 2304:  # the third trial
            os.write(2, b"ready\\n")
            await asyncio.Event().wait()
        ctx.finding("fits", max_ >= 1000)

    return Experiment.single("fits", SetSysctl("nf_conntrack_max", max_) >> Call(verdict, name="verdict"))

sweep = Sweep(
    name="held",
    experiment=experiment,
    vary="max_",
    space=range(256, 256 + 64 * 64, 64),
    holds=lambda r: r.findings["main"]["fits"] is True,
    repeats=0,  # one run per value: this is about the output, not the confirmations
)
"""


def test_a_signal_stops_a_sweep_after_its_trials_undos_and_writes_the_results_so_far(tmp_path: Path) -> None:
    path, out = tmp_path / "held.py", tmp_path / "out"
    path.write_text(HELD_SWEEP)
    argv = [sys.executable, "-m", "connreset", "sweep", str(path), *BACKEND, "--seed", "1", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's connreset; the database in tmp_path
    proc = subprocess.Popen(
        argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    assert proc.stderr.readline() == "ready\n"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    journal = out / "journals" / "trial-0003.json"
    assert err.splitlines()[:3] == [
        "interrupted: undoing the trial in flight (again to stop waiting)",
        f"interrupted: the trial in flight (max_=2304) put back 1/1 change(s), verified; journal: {journal}",
        f"2 trial(s) ended; the results so far (marked interrupted): {out / 'results.json'}, "
        f"{out / 'plot.png'}, {out / 'plot.svg'}",
    ]
    doc = read(journal)
    assert doc["cancelled"] is True and [(u["status"], u["verified"]) for u in doc["undo"]] == [
        ("done", True)
    ]
    results = json.loads((out / "results.json").read_text())
    assert results["interrupted"] is True and len(results["trials"]) == 2


@pytest.mark.parametrize(
    "entry",
    [
        {"id": 1, "action": "format-disk", "node": "node-1", "target": "/"},
        {"id": 1, "action": "sysctl", "node": "node-1", "target": "net.netfilter.nf_conntrack_max"},
        {"id": 1, "action": "rule", "node": "node-1", "target": "x", "rule": {"table": "filter"}},
    ],
)
def test_restore_refuses_a_journal_whose_undo_is_not_an_undo_before_opening_anything(
    tmp_path: Path, entry: dict[str, object], untouchable: Touched, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "j.json"
    doc = {"schema": 2, "experiment": "x", "run_id": "r", "spec": {"cluster": CLUSTER}, "undo": [entry]}
    journal.write_text(json.dumps(doc))
    assert main(["restore", str(journal)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"connreset: {journal}: not an undo record") and err.count("\n") == 1
    assert untouchable == []


@pytest.mark.parametrize(
    "doc",
    [
        {
            "schema": 2,
            "experiment": "x",
            "samples": [{"node": "n", "metric": "conntrack_count", "value": 1, "t": "soon"}],
        },
        {"schema": 2, "vary": "x", "boundaries": 5},
        {"schema": 2, "vary": "x", "boundaries": [{"workload": 1}], "trials": []},
    ],
)
def test_report_refuses_a_document_it_cannot_render_and_writes_nothing(
    tmp_path: Path, doc: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    journal, html = tmp_path / "j.json", tmp_path / "r.html"
    journal.write_text(json.dumps(doc))
    assert main(["report", str(journal), "--html", str(html)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"connreset: {journal}: not a connreset") and err.count("\n") == 1
    assert not html.exists()


def test_an_experiment_file_calling_exit_is_refused_not_obeyed(
    tmp_path: Path, made: list[testing.MemoryNodeAccess], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "quits.py"
    path.write_text("import sys\nsys.exit(0)\n")
    assert main([str(path), *BACKEND]) == 2
    assert capsys.readouterr().err == f"connreset: {path}:2: the file called exit(0) while loading\n"
    assert made == []


SWEEP = """
from connreset import *
from connreset.sweep import Sweep

def experiment(*, n: int = 1) -> Experiment:
    return Experiment.single("s", Deploy("app", workloads.command(["true"]), replicas=n))

sweep = Sweep("s", experiment, "n", space=[1, 10, 3000], holds=lambda r: True)
"""


def test_a_sweep_is_checked_trial_by_trial_before_the_lab_is_built(
    tmp_path: Path, untouchable: Touched, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sweep.py"
    path.write_text(SWEEP)
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"connreset: {path}: the trial n=3000: step 'deploy app': 3000 replicas of app")
    assert untouchable == []


def test_a_sweeps_out_must_be_a_directory_it_can_write(
    tmp_path: Path, untouchable: Touched, capsys: pytest.CaptureFixture[str]
) -> None:
    path, taken = tmp_path / "sweep.py", tmp_path / "file"
    path.write_text(SWEEP.replace("3000", "30"))
    taken.write_text("")
    assert main(["sweep", str(path), "--out", str(taken / "results")]) == 2
    assert capsys.readouterr().err == f"connreset: --out {taken}/results: {taken} is not a directory\n"
    assert untouchable == []


def test_no_command_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-v"]) == 2
    assert (
        capsys.readouterr().err == "connreset: no command or experiment file given (see `connreset --help`)\n"
    )
    assert main(["--help"]) == 0
    assert "usage: connreset" in capsys.readouterr().out


def test_options_before_the_file_keep_their_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`connreset --log-format json FILE` once read `json` as the experiment file."""
    assert (
        main(["--log-format", "json", "-v", str(ROOT / "experiments/issue_74839.py"), *BACKEND, "--dry-run"])
        == 0
    )
    assert "plan for issue-74839" in capsys.readouterr().out


@pytest.mark.parametrize("tui", ["--tui", "--no-tui"])
@pytest.mark.parametrize("journal", ["/proc/x.json", "/proc/nope/x.json", "DIR", "LINK"])
def test_an_unwritable_journal_is_refused_before_anything_starts(
    tmp_path: Path, journal: str, tui: str, untouchable: Touched, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11: with --journal /proc/x.json or a directory, the whole run went on without a
    journal, ended in a traceback with exit 1 and left DIR.tmp. Found again by fuzzing: with
    --tui, /proc/x.json was only refused inside the running TUI."""
    (tmp_path / "dir").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    path = journal.replace("DIR", str(tmp_path / "dir")).replace("LINK", str(tmp_path / "link"))
    argv = [str(ROOT / "experiments/issue_74839.py"), *BACKEND, "--journal", path, tui]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"connreset: --journal {path}: cannot write it: ") and err.count("\n") == 1
    assert untouchable == [] and not (tmp_path / "elsewhere").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "link"]  # no DIR.tmp


def test_a_writable_journal_is_tried_and_left_as_it_was(tmp_path: Path) -> None:
    from connreset.runs.journal import check_path

    new, old = tmp_path / "runs" / "new.json", tmp_path / "old.json"
    old.write_text("kept")
    check_path(new)
    check_path(old, overwrite=True)
    assert not new.exists() and new.parent.is_dir() and old.read_text() == "kept"
    assert (new.parent.stat().st_mode & 0o777) == 0o700


def test_journal_refuses_an_existing_file_that_is_not_an_ended_runs_journal(
    tmp_path: Path, untouchable: Touched, capsys: pytest.CaptureFixture[str]
) -> None:
    """F6: as root, --journal /etc/hosts would have destroyed it."""
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    argv = [str(ROOT / "experiments/issue_74839.py"), *BACKEND, "--no-tui", "--journal", str(hosts)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == (
        f"connreset: --journal {hosts}: exists and is not the journal of an ended connreset run; "
        "choose another path, or --overwrite\n"
    )
    assert hosts.read_text() == "127.0.0.1 localhost\n" and untouchable == []


def test_journal_replaces_an_ended_runs_journal_but_not_a_killed_ones(tmp_path: Path) -> None:
    from connreset.runs.journal import check_path

    ended, killed = tmp_path / "ended.json", tmp_path / "killed.json"
    doc = {"schema": 2, "experiment": "x", "run_id": "r", "outcome": "passed", "undo": []}
    ended.write_text(json.dumps(doc))
    killed.write_text(json.dumps({**doc, "outcome": None}))
    check_path(ended)
    with pytest.raises(ValidationError, match="did not end; put it back first"):
        check_path(killed)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def experiment(:\n", ":1: invalid Python"),  # issue 11's command
        ("from connreset import *\nexperiment = Experiment.single('x', nope)\n", ":2: NameError"),
        ("def experiment():\n    raise RuntimeError('broken')\n", ":2: RuntimeError: broken"),
        ("import no_such_module_here\n", ":1: cannot import no_such_module_here"),
    ],
)
def test_an_experiment_file_that_fails_to_load_exits_2_in_one_line_before_the_lab(
    tmp_path: Path, source: str, message: str, untouchable: Touched, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.py"
    path.write_text(source)
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"connreset: {path}{message}") and err.count("\n") == 1 and "Traceback" not in err
    assert untouchable == []


FAILING_UNDO = """
import asyncio, os
from connreset import *

async def ready(ctx):
    ctx.testbed.access.fail["write_file"] = OSError(19, "Cannot find device")
    os.write(2, b"ready\\n")
    await asyncio.Event().wait()

experiment = Experiment.single("dev", SetSysctl("nf_conntrack_max", 1200) >> Call(ready))
"""


def test_an_interrupt_whose_undo_fails_says_so_not_put_back(tmp_path: Path) -> None:
    """Issue 11: a SIGINT during a Deploy gave a failed undo, yet "changes were put back"."""
    path, journal = tmp_path / "dev.py", tmp_path / "j.json"
    path.write_text(FAILING_UNDO)
    argv = [sys.executable, "-m", "connreset", str(path), *BACKEND, "--journal", str(journal)]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    assert proc.stderr.readline() == "ready\n"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted: 1 change(s) were not put back:" in err and f"connreset restore {journal}" in err
    assert "put back and verified" not in out + err
    (undo,) = read(journal)["undo"]
    assert undo["status"] == "failed" and "Cannot find device" in undo["detail"]


HANGS_AT_UNDO = """
import os
from connreset import *

async def last(ctx):
    ctx.testbed.access.hang.add("write_file")  # the undo's write will never answer
    os.write(2, b"ready\\n")

experiment = Experiment.single("late", SetSysctl("nf_conntrack_max", 1200) >> Call(last))
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_final_undo_ends_in_130_and_the_journal_says_cancelled(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """Issue 11: a signal during the final undo of a passing run gave exit 0, "passed"."""
    path, journal = tmp_path / "late.py", tmp_path / "j.json"
    path.write_text(HANGS_AT_UNDO)
    argv = [sys.executable, "-m", "connreset", str(path), *BACKEND, "--journal", str(journal)]
    proc = subprocess.Popen(
        [*argv, "--undo-timeout", "2"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    assert proc.stderr.readline() == "ready\n"  # the steps are done: the undo comes next, and hangs
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert "outcome: passed" not in out
    doc = read(journal)
    assert doc["cancelled"] is True and doc["outcome"] == "error"


def test_ctrl_c_while_importing_exits_130_without_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 11: a SIGINT while the program was still importing gave a KeyboardInterrupt traceback."""
    import builtins
    import runpy

    real = builtins.__import__

    def interrupted(name: str, *args: object, **kwargs: object) -> object:
        if name == "connreset.ui.cli":
            raise KeyboardInterrupt
        return real(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", interrupted)
    monkeypatch.delitem(sys.modules, "connreset.__main__", raising=False)
    with pytest.raises(SystemExit) as info:
        runpy.run_module("connreset", run_name="__main__")
    assert info.value.code == 130


def test_the_journal_writer_never_follows_a_symlink_at_its_temporary_file(tmp_path: Path) -> None:
    """Issue 11: as root, a symlink at JOURNAL.tmp made connreset overwrite any file."""
    import os

    from connreset import Experiment, SetSysctl, run_sync

    victim, journal = tmp_path / "victim", tmp_path / "j.json"
    victim.write_text("precious")
    (tmp_path / f".j.json.{os.getpid()}.tmp").symlink_to(victim)
    run_sync(Experiment.single("s", SetSysctl("nf_conntrack_max", 1200)), testing.testbed(), journal=journal)
    assert victim.read_text() == "precious"
    assert read(journal)["experiment"] == "s"  # its lines stay, readable


def test_a_parameter_given_as_a_flag_suggests_set(
    untouchable: Touched, capsys: pytest.CaptureFixture[str]
) -> None:
    path = ROOT / "experiments/issue_74839.py"
    assert main(["run", str(path), "--offset", "5"]) == 2
    assert capsys.readouterr().err == (
        f"connreset: unrecognized arguments: --offset 5; offset is a parameter of {path}: "
        "give it as --set offset=5 (see `connreset --help`)\n"
    )
    assert main([str(path), "--offset=-100000", "--fix", "none", "--require-reset"]) == 2
    assert capsys.readouterr().err == (
        f"connreset: unrecognized arguments: --offset=-100000 --fix none --require-reset; offset, fix, "
        f"require_reset are parameters of {path}: give them as --set offset=-100000 --set fix=none "
        "--set require_reset=true (see `connreset --help`)\n"
    )
    assert main([str(path), "--colour", "red"]) == 2  # not a parameter: no hint
    assert (
        capsys.readouterr().err
        == "connreset: unrecognized arguments: --colour red (see `connreset --help`)\n"
    )
    assert untouchable == []


def test_a_missing_experiment_file_suggests_the_nearest(
    untouchable: Touched, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(ROOT / "experiments/issue_7483.py"), "--dry-run"]) == 2
    assert capsys.readouterr().err == (
        f"connreset: no such experiment file: {ROOT}/experiments/issue_7483.py; "
        f"did you mean {ROOT}/experiments/issue_74839.py?\n"
    )
    assert untouchable == []


@pytest.mark.parametrize(
    ("argv", "start", "end"),
    [
        (
            ["--cluster", "labb"],
            "connreset: unknown cluster backend 'labb' (installed: ",
            "; did you mean 'lab'?\n",
        ),
        (
            ["--node-access", "sh"],
            "connreset: unknown node access 'sh' (installed: ",
            "; did you mean 'ssh'?\n",
        ),
        (["--cluster", "k8s"], "connreset: unknown cluster backend 'k8s' (installed: ", ")\n"),  # none near
    ],
)
def test_an_unknown_backend_suggests_the_nearest_installed_one(
    argv: list[str], start: str, end: str, untouchable: Touched, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(ROOT / "experiments/issue_74839.py"), *argv, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(start) and err.endswith(end) and err.count("\n") == 1
    assert untouchable == []


def test_a_parameter_the_experiment_refuses_names_it_and_the_value_typed(
    untouchable: Touched, capsys: pytest.CaptureFixture[str]
) -> None:
    path = ROOT / "experiments/blog_repro.py"
    assert main([str(path), "--set", "window=-1", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"connreset: {path}:") and err.count("\n") == 1
    assert err.endswith(
        ": parameter window=-1 (from --set): Observe duration must be a finite number > 0, got -1.0\n"
    )
    assert main([str(path), "--set", "connections=ten", "--dry-run"]) == 2
    assert capsys.readouterr().err == (
        f"connreset: {path}: parameter connections must be int (a whole number), got 'ten'\n"
    )
    assert untouchable == []
