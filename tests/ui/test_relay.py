"""A run (and a sweep) in a guest, shown on the host as a host run is: the console lines and the
TUI, fed by the guest's events over the wire; ``q`` in the TUI is an interrupt for the guest's run.

No guest boots here: ``fake_guest.py`` stands in for vng, QEMU and the guest (the command
``vm.boot`` starts), and runs connreset's real command line on the test doubles' testbed, with
the ``--emit-events`` the host adds. Everything else is the real thing: the host's CLI, vm.boot's
pumps and interrupts, the wire, the console renderer and the apps (through textual's pilot).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

import pytest

from connreset import events as ev
from connreset.experiment import loader
from connreset.guest import kernels, vm
from connreset.runs.journal import read
from connreset.runs.wire import PREFIX
from connreset.sweep import load_sweep
from connreset.tui.widgets import EventLog, StepGraph, SweepPanel, VerdictPanel
from connreset.ui import relay
from connreset.ui.cli import main

FAKE = Path(__file__).with_name("fake_guest.py")
RELEASE = "5.10.0-fake"
BACKEND = [
    "--cluster",
    "connreset.testing:memory_cluster",
    "--node-access",
    "connreset.testing:memory_access",
]
SIZE = (120, 40)

EXPERIMENT = """
from connreset import *

async def verdict(ctx):
    ctx.finding("rst", True)

experiment = Experiment(
    "relayed",
    [
        Phase(
            "fill",
            SetSysctl("nf_conntrack_max", 1200)
            >> Deploy("app", workloads.command(["true"]), replicas=2)
            >> (Observe(0.3, every=0.1) | AssertRunning("app", within=1))
            >> Call(verdict, name="verdict"),
            expect="it fills",
        )
    ],
)
"""

LONG = """
from connreset import *
experiment = Experiment.single(
    "long",
    Deploy("app", workloads.command(["true"]), replicas=2) >> Observe(120, every=0.2),
)
"""

STUCK = """
from connreset import *

async def cut_the_link(ctx):
    ctx.testbed.access.hang.add("write_file")  # the node stops answering: its undo will hang

experiment = Experiment.single(
    "stuck",
    SetSysctl("nf_conntrack_max", 1200) >> Call(cut_the_link, name="cut") >> Observe(120, every=0.2),
)
"""

SWEEP = """
from connreset import *
from connreset.sweep import Sweep

def experiment(*, max_: int = 256) -> Experiment:
    async def verdict(ctx):
        ctx.finding("fits", max_ >= 400)

    return Experiment.single("fits", SetSysctl("nf_conntrack_max", max_) >> Call(verdict, name="verdict"))

sweep = Sweep(
    name="fits",
    experiment=experiment,
    vary="max_",
    space=range(256, 256 + 64 * 8, 64),
    holds=lambda r: r.findings["main"]["fits"] is True,
    repeats=0,
)
"""


@pytest.fixture
def fake_guest(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """``vm.boot`` starts fake_guest.py instead of vng (and needs no QEMU nor modprobe for it);
    the guest lock in a cache of the test's own. Returns a kernel image for ``--kernel PATH``."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(vm, "vng_argv", lambda *_args: [sys.executable, str(FAKE)])
    monkeypatch.setattr(vm, "_qemu", lambda: "/nonexistent/qemu-system-x86_64")
    monkeypatch.setattr(vm, "tool", lambda name: f"/nonexistent/{name}")
    image = tmp_path / "boot" / f"vmlinuz-{RELEASE}"
    image.parent.mkdir()
    image.write_bytes(b"")
    (tmp_path / "lib" / "modules" / RELEASE).mkdir(parents=True)
    return image


def _same(text: str) -> str:
    """Console output without what differs between two runs: durations, paths, run ids."""
    text = re.sub(r"\[\d+\.\d+s\]", "[…s]", text)
    text = re.sub(r"journal: \S+", "journal: …", text)
    return re.sub(r"\d+(\.\d+)?s  conntrack", "…s  conntrack", text)


def _command(image: Path, tmp_path: Path, inner: list[str]) -> relay.GuestCommand:
    return relay.GuestCommand(
        kernels.own(image), vm.GuestOptions(accel="tcg"), (tmp_path,), (*inner, "--no-tui", relay.EMIT)
    )


def test_on_the_console_a_guest_run_prints_what_a_host_run_prints(
    fake_guest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exp = tmp_path / "exp.py"
    exp.write_text(EXPERIMENT)
    assert main([str(exp), *BACKEND, "--no-tui", "--journal", str(tmp_path / "host.json")]) == 0
    host = capsys.readouterr()
    code = main(
        [str(exp), *BACKEND, "--no-tui", "--kernel", str(fake_guest), "--accel", "tcg",
         "--journal", str(tmp_path / "guest.json")]
    )  # fmt: skip
    guest = capsys.readouterr()
    assert code == 0, guest.err
    assert PREFIX not in guest.out + guest.err  # every event line was taken, none printed raw
    assert "── phase fill" in guest.out and "outcome: passed" in guest.out
    assert _same(guest.out) == _same(host.out)
    # the RunStarted the host received names the guest's kernel (its environment came across)
    assert f"guest: the run is on kernel {RELEASE} (TCG)" in guest.err
    assert "guest: done in" in guest.err and "exit 0" in guest.err
    assert read(tmp_path / "guest.json")["environment"]["guest_kernel"] == RELEASE  # written in the "guest"


async def test_the_tui_shows_the_guest_run_and_its_verdict(fake_guest: Path, tmp_path: Path) -> None:
    exp = tmp_path / "exp.py"
    exp.write_text(EXPERIMENT)
    plan = loader.load(exp, raw={})
    journal = tmp_path / "j.json"
    command = _command(fake_guest, tmp_path, [str(exp), *BACKEND, "--journal", str(journal)])
    app, relayed = relay.run_app(command, plan.phases, plan.experiment.name)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.ended is not None and app.ended.exit_code == 0 and not app.ended.cancelled
        graph = app.query_one(StepGraph)
        assert graph.phase_state == {"fill": "passed"}
        assert set(graph.step_state.values()) == {"ok"}
        verdict = app.query_one(VerdictPanel)
        assert "FILL" not in verdict.text and "fill" in verdict.text and "outcome: passed" in verdict.text
        assert "rst: yes" in verdict.text
        assert app.title == "relayed" and app.sub_title == f"memory in a guest of {RELEASE} (TCG)"
        logged = "\n".join(line.text for line in app.query_one(EventLog).lines)
        assert f"guest: the run is on kernel {RELEASE}" in logged
        assert "finished: passed; exit 0" in app.status
        await pilot.press("q")  # the run has ended: q quits with its exit code
    assert app.return_value == 0
    assert relayed.runs[0].exit_code == 0
    assert read(journal)["outcome"] == "passed"


async def test_q_in_the_tui_interrupts_the_guest_run_which_undoes_and_ends(
    fake_guest: Path, tmp_path: Path
) -> None:
    exp = tmp_path / "long.py"
    exp.write_text(LONG)
    plan = loader.load(exp, raw={})
    journal = tmp_path / "j.json"
    command = _command(fake_guest, tmp_path, [str(exp), *BACKEND, "--journal", str(journal)])
    app, relayed = relay.run_app(command, plan.phases, plan.experiment.name)
    observing = _observing(relayed)
    async with app.run_test(size=SIZE) as pilot:
        await asyncio.wait_for(observing.wait(), 120)  # deployed (something to undo), observing 120 s
        await pilot.press("q")
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert app.ended is not None and app.ended.cancelled and app.ended.exit_code == 130
    assert app.return_value == 130
    assert relayed.runs[0].exit_code == 130  # the guest's run ended by the interrupt, not killed
    data = read(journal)
    assert data["cancelled"] is True and data["pending"] == []
    assert "put back and verified" in relayed.feed.closing_text()  # what the guest's CLI said
    assert app.status.startswith("stopped: 1 change(s) put back and verified")


def _observing(relayed: relay.Relayed) -> asyncio.Event:
    """Set when the guest's run starts observing (deployed: it has something to undo)."""
    observing = asyncio.Event()

    def watch(event: ev.Event) -> None:
        if isinstance(event, ev.StepStarted) and event.kind == "observe":
            observing.set()

    relayed.feed.bus.subscribe(watch)
    return observing


async def test_a_second_q_stops_the_guest_run_waiting_for_its_undos(fake_guest: Path, tmp_path: Path) -> None:
    exp = tmp_path / "stuck.py"
    exp.write_text(STUCK)
    plan = loader.load(exp, raw={})
    journal = tmp_path / "j.json"
    inner = [str(exp), *BACKEND, "--journal", str(journal), "--undo-timeout", "600"]
    app, relayed = relay.run_app(_command(fake_guest, tmp_path, inner), plan.phases, plan.experiment.name)
    observing = _observing(relayed)
    async with app.run_test(size=SIZE) as pilot:
        await asyncio.wait_for(observing.wait(), 120)
        await pilot.press("q")  # the undo of the sysctl hangs: only the second q ends the wait (600 s)
        await pilot.press("q")
        await asyncio.wait_for(app.workers.wait_for_complete(), 120)
        await pilot.pause()
    assert app.ended is not None and app.ended.exit_code == 130
    assert relayed.feed.closing_text().count("fake guest: an interrupt") == 2
    assert len(read(journal)["pending"]) == 1  # the sysctl, left for connreset restore
    assert "put them back with: connreset restore" in relayed.feed.closing_text()


def test_a_sweep_in_a_guest_prints_its_progress_as_a_host_sweep_does(
    fake_guest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # the sweep's example database
    (tmp_path / "s.py").write_text(SWEEP)
    args = ["sweep", "s.py", *BACKEND, "--seed", "1", "--no-tui"]
    assert main([*args, "--out", "host"]) == 0
    host = [line for line in capsys.readouterr().out.splitlines() if line.startswith("◆ sweep ")]
    assert main([*args, "--kernel", str(fake_guest), "--accel", "tcg", "--out", "out"]) == 0
    out, err = capsys.readouterr()
    sweep = [line for line in out.splitlines() if line.startswith("◆ sweep ")]
    assert sweep[0] == "◆ sweep 0/5: now max_=256" and "boundary" in sweep[-1]
    assert err.count(f"guest: the run is on kernel {RELEASE}") == 1  # said once, not per trial
    assert [_same(line) for line in sweep] == [_same(line) for line in host]
    assert PREFIX not in out
    doc = json.loads((tmp_path / "out/results.json").read_text())
    (only,) = doc["kernels"].values()
    assert only["kernel"] == RELEASE and only["boundaries"]


async def test_the_sweep_tui_shows_a_guest_sweep(
    fake_guest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.py").write_text(SWEEP)
    spec, _ = load_sweep(Path("s.py"))
    command = _command(fake_guest, tmp_path, ["sweep", "s.py", *BACKEND, "--seed", "1", "--out", "out"])
    app, relayed = relay.sweep_app(command, spec)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.ended is not None and app.ended.exit_code == 0
        panel = app.query_one(SweepPanel)
        assert panel.last is not None and panel.last.boundary
        assert "max_" in app.query_one(VerdictPanel).text
        assert app.sub_title == f"fits on memory in a guest of {RELEASE} (TCG)"
        await pilot.press("q")
    assert app.return_value == 0 and relayed.runs[0].exit_code == 0


def test_a_line_that_is_not_an_event_is_left_to_be_copied() -> None:
    got: list[ev.Event] = []
    feed = relay.Feed(ev.EventBus([got.append]))
    assert feed.line("▶ a plain line\n") is False
    assert feed.line(PREFIX + "{not json\n") is False  # logged, and copied as it came
    assert feed.line(PREFIX + '{"$attrs":"PhaseStarted","fields":{"phase":"p","t":1.0}}\n') is True
    assert got == [ev.PhaseStarted("p", 1.0)]
    assert feed.interrupt() is False  # no guest yet: the app cancels its worker instead
