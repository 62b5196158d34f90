"""Fault injection on the real lab, driven by hypothesis: kill -9 at any moment of the shipped
experiments, then ``connreset restore`` or nothing at all (the watchdog alone); SIGINT and SIGTERM
at any moment, undos included; and many runs in a row. The machine must end as it was.

Moments are the lines the run prints (a step done, an undo done, a phase begun), so a kill lands
*between* events of the run, at a point hypothesis chose, with nothing timed. The bounded form runs
in CI; ``CONNRESET_FAULTS=N`` (``nox -s reliability``) tries N examples of each kind, and
``CONNRESET_FAULTS_LOG=FILE`` appends one JSON line per example tried (for docs/reliability.md).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from connreset.lab import host
from connreset.runs.journal import read
from connreset.watchdog import agent
from tests.reliability_figures import tally
from tests.watchdog.test_lab import wait_for_exit

pytestmark = [pytest.mark.root, pytest.mark.slow]
ROOT = Path(__file__).parent.parent
LONG = int(os.environ.get("CONNRESET_FAULTS", "0"))
LEASE = 2.0
MARGIN = 20.0

#: argv after ``connreset run``, and how many lines a whole run prints at least (measured: 49;
#: blog_repro 170 before its verdict table, 22 of them progress lines that vary with timing)
EXPERIMENTS = {
    "issue_74839": (["experiments/issue_74839.py", "--set", "every=1", "--set", "window=5"], 49),
    "blog_repro": (["experiments/blog_repro.py"], 150),
}


def examples(bounded: int) -> settings:
    return settings(
        max_examples=LONG or bounded,
        deadline=None,
        derandomize=not LONG,  # CI: the same moments every time; the long form explores
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: each example is a whole run
    )


class Run:
    """``connreset run`` in a process of its own, read line by line."""

    def __init__(self, tmp: Path, argv: list[str], lease: float = LEASE) -> None:
        self.journal = tmp / f"j-{time.monotonic_ns()}.json"
        self.stderr = open(tmp / "stderr", "w")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "connreset", "run", *argv, "--no-tui", "--journal", str(self.journal),
             "--watchdog-lease", str(lease)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=self.stderr, start_new_session=True,
        )  # fmt: skip
        self.lines: list[str] = []

    def read(self, n: int) -> bool:
        """Read until the n-th line; False if the run ended first."""
        out: IO[bytes] | None = self.proc.stdout
        assert out is not None
        while len(self.lines) < n:
            line = out.readline()
            if not line:
                return False
            self.lines.append(line.decode())
        return True

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def wait(self) -> int:
        """Wait for the process, then take what it printed (without waiting for an end of file
        that a leftover holder of its stdout would withhold)."""
        code = self.proc.wait()
        out = self.proc.stdout
        assert out is not None
        os.set_blocking(out.fileno(), False)
        rest = out.read() or b""
        out.close()
        self.lines += rest.decode(errors="replace").splitlines(keepends=True)
        self.stderr.close()
        return code

    def watchdog_pid(self) -> int | None:
        """The lab's watchdog, from the journal (lines, or the summary of a run that ended)."""
        place = read(self.journal)["watchdogs"].get("this machine", {})
        pid = place.get("pid")
        return pid if isinstance(pid, int) else None


@pytest.fixture
def originals() -> Iterator[dict[str, str]]:
    yield {
        k: host.read_global(k)
        for k in ("net.netfilter.nf_conntrack_max", "net.netfilter.nf_conntrack_buckets")
    }


def assert_as_it_was(originals: dict[str, str]) -> None:
    assert host.lab_namespaces() == []
    assert {k: host.read_global(k) for k in originals} == originals
    root = host.watchdog_root()
    left = [d for d in root.iterdir()] if root.exists() else []
    running = [d for d in left if (d / "pid").exists() and agent.alive(int((d / "pid").read_text()))]
    assert running == [], "a watchdog is still running"


#: The first printed line the watchdog guards: the run's two header lines (the experiment, then the
#: lab's kube-proxy) are printed before it is armed; from the first phase's line on it guards every
#: change.
ARMED = 3


def forget_records() -> None:
    """The fired watchdogs' records, once checked (the next example starts clean)."""
    root = host.watchdog_root()
    if root.exists():
        for d in root.iterdir():
            agent.remove(str(d))
        root.rmdir()


@pytest.mark.parametrize("experiment", sorted(EXPERIMENTS))
@pytest.mark.parametrize("recovery", ["restore", "watchdog"])
def test_kill_9_at_any_moment_then_restore_or_the_watchdog_alone(
    tmp_path: Path, originals: dict[str, str], experiment: str, recovery: str
) -> None:
    argv, lines = EXPERIMENTS[experiment]
    first = 1 if recovery == "restore" else ARMED

    @examples(1)
    @example(at=lines * 2 // 3)  # CI also kills one mid-run, whatever hypothesis draws
    @given(at=st.integers(first, lines - 1))
    def kill_at(at: int) -> None:
        run = Run(tmp_path, argv)
        reached = run.read(at)
        run.signal(signal.SIGKILL)
        code = run.wait()
        if recovery == "restore":
            out = subprocess.run(
                [sys.executable, "-m", "connreset", "restore", str(run.journal)],
                cwd=ROOT, capture_output=True, text=True, check=False,
            )  # fmt: skip
            assert out.returncode == 0, out.stdout + out.stderr
            assert "✗" not in out.stdout
        else:
            pid = run.watchdog_pid()
            assert pid is not None, "killed after the watchdog was armed, yet none is in the journal"
            assert wait_for_exit(pid, LEASE + MARGIN), "the watchdog did not finish in time"
        assert_as_it_was(originals)
        forget_records()
        tally(
            "kill",
            experiment=experiment,
            recovery=recovery,
            line=at,
            reached=reached,
            code=code,
            restored=True,
        )

    kill_at()


@pytest.mark.parametrize("experiment", sorted(EXPERIMENTS))
def test_sigint_or_sigterm_at_any_moment_ends_130_with_every_undo(
    tmp_path: Path, originals: dict[str, str], experiment: str
) -> None:
    argv, lines = EXPERIMENTS[experiment]

    @examples(1)
    @example(at=lines * 2 // 3, sig=signal.SIGTERM)
    @example(at=13, sig=signal.SIGINT)  # found by the long form: Ctrl-C inside a Deploy
    @given(at=st.integers(1, lines - 1), sig=st.sampled_from([signal.SIGINT, signal.SIGTERM]))
    def signal_at(at: int, sig: signal.Signals) -> None:
        run = Run(tmp_path, argv)
        reached = run.read(at)
        if reached:
            run.signal(sig)
        code = run.wait()
        doc = read(run.journal)
        if reached and doc["outcome"] is not None and doc["cancelled"]:
            assert code == 130, run.lines[-5:]
            assert doc["outcome"] == "error"
            # no phase ran after the signal (one a closing undo held back used to run in full)
            assert len(ran(doc)) <= phases_begun(run.lines[:at]), (ran(doc), run.lines[:at][-3:])
        else:  # the signal came after the run had ended: a normal end
            assert code in (0, 1) and not doc["cancelled"], (code, run.lines[-5:])
        undone = doc["undo"]
        assert all(u["status"] == "done" and u["verified"] for u in undone), undone
        assert doc["pending"] == []
        assert_as_it_was(originals)
        tally(
            "signal", experiment=experiment, signal=sig.name, line=at, code=code, cancelled=doc["cancelled"]
        )

    signal_at()


@pytest.mark.parametrize("experiment", sorted(EXPERIMENTS))
def test_kill_9_then_restore_killed_at_any_moment_the_watchdog_finishes(
    tmp_path: Path, originals: dict[str, str], experiment: str
) -> None:
    """F1: ``restore`` killed part-way (at 0.6 s in the report) left the machine changed."""
    argv, lines = EXPERIMENTS[experiment]

    @examples(1)
    @example(at=lines * 2 // 3, after=0.6)
    @given(at=st.integers(ARMED, lines - 1), after=st.floats(0.0, 1.5))
    def kill_restore(at: int, after: float) -> None:
        run = Run(tmp_path, argv)
        run.read(at)
        run.signal(signal.SIGKILL)
        run.wait()
        pid = run.watchdog_pid()
        assert pid is not None
        restore = subprocess.Popen(
            [sys.executable, "-m", "connreset", "restore", str(run.journal)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:  # the moment is the behaviour under test: any time into the restore
            finished = restore.wait(timeout=after) == 0
        except subprocess.TimeoutExpired:
            os.kill(restore.pid, signal.SIGKILL)
            finished = restore.wait() == 0
        assert wait_for_exit(pid, LEASE + MARGIN), "the watchdog did not finish in time"
        assert_as_it_was(originals)
        forget_records()
        tally("restore-killed", experiment=experiment, line=at, after=round(after, 2), finished=finished)

    kill_restore()


@pytest.mark.parametrize("experiment", sorted(EXPERIMENTS))
def test_restore_after_the_watchdog_changes_nothing(
    tmp_path: Path, originals: dict[str, str], experiment: str
) -> None:
    """F3/F8: restore after the watchdog wrote every recorded value again, then said ✗ and 3."""
    argv, lines = EXPERIMENTS[experiment]

    @examples(1)
    @example(at=lines * 2 // 3)
    @given(at=st.integers(ARMED, lines - 1))
    def after_watchdog(at: int) -> None:
        run = Run(tmp_path, argv)
        run.read(at)
        run.signal(signal.SIGKILL)
        run.wait()
        pid = run.watchdog_pid()
        assert pid is not None and wait_for_exit(pid, LEASE + MARGIN)
        assert_as_it_was(originals)
        out = subprocess.run(
            [sys.executable, "-m", "connreset", "restore", str(run.journal)],
            cwd=ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert out.returncode == 0, out.stdout + out.stderr
        assert "✗" not in out.stdout
        said = [line for line in out.stdout.splitlines() if line.startswith("✓")]
        assert all("watchdog" in line or "no undo" in line for line in said), said
        assert host.lab_namespaces() == [] and not (host.STATE_DIR / "lab.json").exists()  # opened nothing
        assert_as_it_was(originals)
        forget_records()
        tally("restore-after-watchdog", experiment=experiment, line=at, code=out.returncode, lines=len(said))

    after_watchdog()


def ran(doc: dict[str, object]) -> list[str]:
    """The phases that ran to their end (a phase stopped by a signal has no verdict)."""
    phases = doc["phases"]
    assert isinstance(phases, list)
    return [p["name"] for p in phases if p["status"] in ("passed", "failed")]


def phases_begun(lines: list[str]) -> int:
    return sum(line.startswith("── phase") for line in lines)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_the_first_closing_undo_stops_the_run(
    tmp_path: Path, originals: dict[str, str], sig: signal.Signals
) -> None:
    """F2: SIGTERM while issue_74839 put back its no-fix phase used to run all of the next phase
    and mark it passed; two SIGINTs were both ignored. Now: 130 within the undo timeout, no
    later phase, and the machine as it was."""
    argv, _ = EXPERIMENTS["issue_74839"]
    run = Run(tmp_path, argv)
    while run.read(len(run.lines) + 1) and not run.lines[-1].startswith("  ↶"):
        pass
    assert run.lines[-1].startswith("  ↶"), "the run ended without a closing undo"
    at = len(run.lines)
    sent = time.monotonic()
    run.signal(sig)
    code = run.wait()
    took = time.monotonic() - sent
    doc = read(run.journal)
    assert code == 130, run.lines[-5:]
    assert took < 30.0, f"{took:.1f}s: more than the undo timeout"
    assert doc["cancelled"] and ran(doc) == ["no-fix"], doc["phases"]
    assert phases_begun(run.lines[at:]) == 0, run.lines[at:]
    assert all(u["status"] == "done" and u["verified"] for u in doc["undo"]), doc["undo"]
    assert doc["pending"] == []
    assert_as_it_was(originals)
    tally(
        "closing-undo", experiment="issue_74839", signal=sig.name, line=at, code=code, seconds=round(took, 2)
    )


def test_many_runs_in_a_row_leak_nothing(tmp_path: Path, originals: dict[str, str]) -> None:
    """Every kind of change, N times: no namespace, veth, process, open file or sysctl left."""
    (tmp_path / "churn.py").write_text(
        "from connreset import *\n"
        "experiment = Experiment.single('churn',\n"
        "    SetSysctl('nf_conntrack_max', 4096) >> SetSysctl('nf_conntrack_tcp_be_liberal', 1)\n"
        "    >> ApplyFix('drop-invalid')\n"
        "    >> Deploy('web', workloads.http_server(size=1024), replicas=2, port=80)\n"
        "    >> AssertRunning('web', within=10))\n"
    )
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    children = set(os.listdir("/proc"))
    runs = 100 if LONG else 5
    for i in range(runs):
        run = Run(tmp_path, [str(tmp_path / "churn.py")])
        assert run.wait() == 0, run.lines
        assert_as_it_was(originals)
        assert (
            subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout == links
        )
        lab = host.processes_in(host.lab_namespaces())
        assert lab == []
        tally("leak", run=i + 1, namespaces=0, veths=0, processes=0, sysctls=0)
    # no process of ours outlived its run (new /proc entries still alive and ours would be)
    mine = [p for p in set(os.listdir("/proc")) - children if p.isdigit() and _parent_is_us(int(p))]
    assert mine == []


def _parent_is_us(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1]) == os.getpid()
    except (FileNotFoundError, IndexError, ValueError):
        return False
