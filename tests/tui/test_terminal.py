"""The CLI in a real terminal (tmux): the TUI shows, ``q`` undoes, the exit code is 130.

Each test runs its own tmux server (``tmux -L <name>``) and kills only that one. The experiment
signals a ``tmux wait-for`` channel when its hold step starts, and the shell one when the CLI has
exited; what the screen shows is read until it shows what is expected (the app paints after the
event), with a deadline.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from connreset.runs.journal import read

ROOT = Path(__file__).parent.parent.parent
MEMORY = ["--cluster", "connreset.testing:memory_cluster", "--node-access", "connreset.testing:memory_access"]
MAX_PATH = Path("/proc/sys/net/netfilter/nf_conntrack_max")

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")

HELD = """
import asyncio, subprocess
from connreset import *

async def hold(ctx):
    subprocess.run(["tmux", "-L", {socket!r}, "wait-for", "-S", "held"], check=True)
    await asyncio.Event().wait()

experiment = Experiment.single(
    "held", SetSysctl("nf_conntrack_max", {value}) >> ApplyFix("be-liberal") >> Call(hold, name="hold")
)
"""


class Tmux:
    """One tmux server of our own, with one window of a fixed size."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def __call__(self, *args: str, timeout: float = 60) -> str:
        out = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=timeout, check=True
        )
        return out.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "run")

    def output(self) -> str:
        """What the pane printed, history included, wrapped lines joined (a journal path wraps)."""
        return self("capture-pane", "-p", "-J", "-S", "-", "-t", "run")

    def wait_for_screen(self, *texts: str, within: float = 20) -> str:
        """The screen, once it shows every one of ``texts`` (AssertionError after ``within`` s)."""
        deadline = time.monotonic() + within
        while True:
            screen = self.screen()
            if all(t in screen for t in texts):
                return screen
            assert time.monotonic() < deadline, f"the screen never showed {texts}:\n{screen}"
            time.sleep(0.05)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    t = Tmux(f"connreset-test-{os.getpid()}-{tmp_path.name}")
    yield t
    subprocess.run(["tmux", "-L", t.socket, "kill-server"], capture_output=True)


def run_held(tmux: Tmux, tmp_path: Path, backend: list[str], value: int = 1200) -> tuple[Path, Path]:
    """Start the CLI on an experiment that changes two settings, then holds; wait until it holds."""
    exp, journal, code = tmp_path / "held.py", tmp_path / "j.json", tmp_path / "exit"
    exp.write_text(HELD.format(socket=tmux.socket, value=value))
    cli = shlex.join([sys.executable, "-m", "connreset", str(exp), *backend, "--journal", str(journal)])
    shell = f"cd {shlex.quote(str(ROOT))}; {cli}; echo $? > {code}; tmux -L {tmux.socket} wait-for -S exited"
    tmux("new-session", "-d", "-s", "run", "-x", "110", "-y", "36", "sh", "-c", shell)
    tmux("set-option", "-t", "run", "remain-on-exit", "on")
    tmux("wait-for", "held")  # the hold step has started: both changes are made
    return journal, code


def press_q_and_wait(tmux: Tmux) -> None:
    tmux("send-keys", "-t", "run", "q")
    tmux("wait-for", "exited")


def test_the_tui_in_tmux_shows_the_run_and_q_undoes_it(tmux: Tmux, tmp_path: Path) -> None:
    journal, code = run_held(tmux, tmp_path, MEMORY)
    # the screen is painted in parts: wait for the footer too
    tmux.wait_for_screen("✓ nf_conntrack_max=1200", "▶ hold", "q Stop (undo) / quit", "held — memory")
    press_q_and_wait(tmux)
    assert code.read_text().strip() == "130"
    assert "interrupted: 3 change(s) put back and verified" in tmux.output()
    doc = read(journal)
    assert doc["cancelled"] is True
    assert [(u["status"], u["verified"]) for u in doc["undo"]] == [("done", True)] * 3


@pytest.mark.root
def test_on_the_lab_q_puts_the_kernel_back_and_exits_130(tmux: Tmux, tmp_path: Path) -> None:
    before = MAX_PATH.read_text().strip()
    value = 1200 if before != "1200" else 1300
    journal, code = run_held(tmux, tmp_path, [], value=value)  # the default cluster: the lab
    assert MAX_PATH.read_text().strip() == str(value)
    tmux.wait_for_screen(f"✓ nf_conntrack_max={value}", "▶ hold")
    press_q_and_wait(tmux)
    assert code.read_text().strip() == "130"
    assert MAX_PATH.read_text().strip() == before
    assert "put back and verified" in tmux.output()
    doc = read(journal)
    assert doc["cancelled"] is True and doc["pending"] == []
    assert doc["undo"] and all(u["status"] == "done" and u["verified"] for u in doc["undo"])
    assert any(u["target"] == "net.netfilter.nf_conntrack_max" for u in doc["undo"])


HELD_SWEEP = """
import asyncio, subprocess
from connreset import *
from connreset.sweep import Sweep

def experiment(*, max_: int = 256) -> Experiment:
    async def verdict(ctx):
        if max_ == 2304:  # the third trial holds
            subprocess.run(["tmux", "-L", {socket!r}, "wait-for", "-S", "held"], check=True)
            await asyncio.Event().wait()
        ctx.finding("fits", max_ >= 1000)

    return Experiment.single("fits", SetSysctl("nf_conntrack_max", max_) >> Call(verdict, name="verdict"))

sweep = Sweep(
    name="held",
    experiment=experiment,
    vary="max_",
    space=range(256, 256 + 64 * 64, 64),
    holds=lambda r: r.findings["main"]["fits"] is True,
    repeats=0,  # one run per value: this is about the TUI, not the confirmations
)
"""


def test_a_sweep_in_the_tui_shows_its_trials_and_q_stops_it(tmux: Tmux, tmp_path: Path) -> None:
    sweep, out, code = tmp_path / "held.py", tmp_path / "out", tmp_path / "exit"
    sweep.write_text(HELD_SWEEP.format(socket=tmux.socket))
    argv = [
        sys.executable,
        "-m",
        "connreset",
        "sweep",
        str(sweep),
        *MEMORY,
        "--seed",
        "1",
        "--repeats",
        "0",
        "--out",
        str(out),
    ]
    shell = (
        f"cd {shlex.quote(str(ROOT))}; {shlex.join(argv)}; echo $? > {code}; "
        f"tmux -L {tmux.socket} wait-for -S exited"
    )
    tmux("new-session", "-d", "-s", "run", "-x", "110", "-y", "36", "sh", "-c", shell)
    tmux("set-option", "-t", "run", "remain-on-exit", "on")
    tmux("wait-for", "held")  # the third trial runs
    tmux.wait_for_screen("trials 2/8", "now: max_=2304", "▶ verdict", "q Stop (undo) / quit")
    press_q_and_wait(tmux)
    assert code.read_text().strip() == "130"
    output = tmux.output()
    assert "interrupted: the trial in flight (max_=2304) put back 1/1 change(s), verified" in output
    assert "2 trial(s) ended; the results so far (marked interrupted)" in output
    assert read(out / "journals" / "trial-0003.json")["cancelled"] is True
