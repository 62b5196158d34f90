"""The standing guest's keeper and its protocol, with a process standing in for the guest.

No QEMU here: the stand-in is a test double for the guest (its kernel and virtme-ng), a Python
process that speaks the guest's side of the protocol with the real code (``inside.serve``). The
commands it serves run a stand-in ``python`` too (``fakepy``): ``-m connreset echo WORDS`` prints
them and exits with the last, ``-m connreset wait`` waits for SIGINT. What a real guest does with
it is in test_in_guest.py (root, a real boot).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from connreset.guest import keeper
from connreset.guest.kernels import Kernel
from connreset.guest.vm import GuestOptions

FAKEPY = """\
import signal, sys, time
args = sys.argv[3:]  # python -m connreset ARGS
if args[0] == "echo":
    print(" ".join(args[1:-1]), flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    sys.exit(int(args[-1]))
if args[0] == "wait":
    print("waiting", flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        print("interrupted: put back", file=sys.stderr, flush=True)
        sys.exit(130)
"""

STAND_IN = """\
import json, sys
from connreset.guest import inside
from connreset.guest.protocol import READY
sys.executable = {fakepy!r}
sys.stdin.readline()
print(READY + json.dumps({{"slowness": 1.0, "problem": ""}}), flush=True)
sys.exit(inside.serve(sys.stdin))
"""


#: A bound on each wait, so that a defect fails the test instead of hanging it (never a pace).
LIMIT = 60.0


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def standing(cache: Path, tmp_path: Path) -> Iterator[keeper.Standing]:
    fakepy = tmp_path / "fakepy"
    fakepy.write_text(f"#!{sys.executable}\n{FAKEPY}")
    fakepy.chmod(0o755)
    kernel = Kernel(release="9.9.9-test", vmlinuz=tmp_path / "vmlinuz", modules=tmp_path)
    said: list[str] = []
    stand_in = [sys.executable, "-c", STAND_IN.format(fakepy=str(fakepy))]
    s = keeper.start(kernel, GuestOptions(), "tcg", said.append, guest_argv=stand_in)
    assert any(line.startswith("guest: up in") for line in said), said
    yield s
    keeper.stop(s)


def _ask(s: keeper.Standing, *argv: str) -> tuple[int, str, str]:
    out: list[str] = []
    err: list[str] = []
    code = asyncio.run(
        asyncio.wait_for(keeper.request(s, argv, cwd=s.work, on_out=out.append, on_err=err.append), LIMIT)
    )
    return code, "".join(out), "".join(err)


def test_a_command_runs_and_its_output_and_exit_code_come_back(standing: keeper.Standing) -> None:
    assert keeper.find(Kernel("9.9.9-test", Path("/x"), Path("/x"))) == standing
    assert _ask(standing, "echo", "hello", "there", "7") == (7, "hello there\n", "to stderr\n")
    assert _ask(standing, "echo", "again", "0") == (0, "again\n", "to stderr\n")  # the next one too


def test_files_are_private(standing: keeper.Standing) -> None:
    assert standing.dir.stat().st_mode & 0o777 == 0o700
    assert standing.socket.stat().st_mode & 0o777 == 0o600


def test_an_interrupt_reaches_the_command(standing: keeper.Standing) -> None:
    async def go() -> tuple[int, list[str], list[str]]:
        out: list[str] = []
        err: list[str] = []
        waiting = asyncio.Event()

        def got(line: str) -> None:
            out.append(line)
            waiting.set()

        task = asyncio.ensure_future(
            keeper.request(
                standing, ["wait"], cwd=standing.work, on_out=got, on_err=err.append, handle_signals=True
            )
        )
        await asyncio.wait_for(waiting.wait(), LIMIT)
        os.kill(os.getpid(), signal.SIGINT)  # the handler passes it on as an `interrupt` line
        return await asyncio.wait_for(task, LIMIT), out, err

    code, out, err = asyncio.run(go())
    assert (code, out, err) == (130, ["waiting\n"], ["interrupted: put back\n"])


def test_a_client_that_goes_away_stops_its_command(standing: keeper.Standing) -> None:
    """A client killed mid-command: the keeper interrupts the command, and serves the next."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CLIENT.format(sock=str(standing.socket))],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert json.loads(proc.stdout.readline()) == {"out": "waiting\n"}  # (the keeper's reply)
    proc.kill()
    proc.wait()
    code, out, _ = _ask(standing, "echo", "next", "0")  # served only once the first one has ended
    assert (code, out) == (0, "next\n")


CLIENT = """\
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect({sock!r})
s.sendall(json.dumps({{"argv": ["wait"], "cwd": "/"}}).encode() + b"\\n")
f = s.makefile()
print(f.readline(), end="", flush=True)
f.readline()
"""


def test_a_second_client_waits_its_turn(standing: keeper.Standing) -> None:
    async def scenario() -> tuple[int, int, list[str]]:
        started = asyncio.Event()
        told = asyncio.Event()
        second_err: list[str] = []
        first = asyncio.ensure_future(
            keeper.request(
                standing, ["wait"], cwd=standing.work, on_out=lambda _: started.set(), on_err=lambda _: None,
                handle_signals=True,
            )
        )  # fmt: skip
        await asyncio.wait_for(started.wait(), LIMIT)

        def err(line: str) -> None:
            second_err.append(line)
            told.set()

        second = asyncio.ensure_future(
            keeper.request(
                standing, ["echo", "second", "0"], cwd=standing.work, on_out=lambda _: None, on_err=err
            )
        )
        await asyncio.wait_for(told.wait(), LIMIT)
        assert not first.done() and not second.done()
        os.kill(os.getpid(), signal.SIGINT)
        return await asyncio.wait_for(first, LIMIT), await asyncio.wait_for(second, LIMIT), second_err

    first_code, second_code, second_err = asyncio.run(scenario())
    assert first_code == 130 and second_code == 0
    assert "waiting for its command under way" in second_err[0]


def test_shutdown_ends_the_keeper_and_leaves_no_files(standing: keeper.Standing) -> None:
    pid = standing.keeper_pid()
    assert pid is not None
    keeper.shutdown(standing)
    assert not Path(f"/proc/{pid}").exists() or _zombie(pid)
    assert not standing.socket.exists() and not standing.pidfile.exists()
    assert keeper.every() == []


def test_lab_down_ends_every_standing_guest(standing: keeper.Standing) -> None:
    from connreset.ui.standing import end_every

    said = end_every()
    assert said == [f"standing guest {standing.release}: powered off"]
    assert keeper.every() == []


def test_a_killed_keeper_takes_its_guest_along_and_its_files_are_cleared(standing: keeper.Standing) -> None:
    pid = standing.keeper_pid()
    assert pid is not None
    guest = _children(pid)
    assert guest, "the stand-in guest is the keeper's child"
    fds = [os.pidfd_open(p) for p in guest]
    os.kill(pid, signal.SIGKILL)
    for fd in fds:  # the stand-in's stdin closes with the keeper: it ends
        import select

        assert select.select([fd], [], [], 30)[0], "the guest outlived its keeper"
        os.close(fd)
    assert keeper.find(Kernel("9.9.9-test", Path("/x"), Path("/x"))) is None
    assert keeper.forget_stale() == [
        "guest 9.9.9-test: its keeper is gone (and its guest with it); files cleared"
    ]
    assert not standing.pidfile.exists() and not standing.socket.exists()


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


NEVER_READY = """\
import sys
sys.stdin.readline()
print("a kernel booting slowly", flush=True)
sys.stdin.readline()  # until the keeper goes
"""


def test_stopping_the_keeper_while_its_guest_boots_leaves_nothing(cache: Path, tmp_path: Path) -> None:
    kernel = Kernel(release="9.9.9-slow", vmlinuz=tmp_path / "vmlinuz", modules=tmp_path)
    s = keeper.standing_for(kernel)
    booting = threading.Event()
    failed: list[BaseException] = []
    said: list[str] = []

    def say(line: str) -> None:
        said.append(line)
        if "booting" in line:
            booting.set()

    def start() -> None:
        try:
            keeper.start(kernel, GuestOptions(), "tcg", say, guest_argv=[sys.executable, "-c", NEVER_READY])
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=start)
    thread.start()
    assert booting.wait(LIMIT)
    pid = s.keeper_pid()
    assert pid is not None
    guest = _children(pid)
    os.kill(pid, signal.SIGTERM)
    thread.join(LIMIT)
    assert not thread.is_alive()
    assert len(failed) == 1 and "did not come up" in str(failed[0])
    assert any("stopped while it booted" in line for line in said), said
    assert not any(Path(f"/proc/{p}").exists() and not _zombie(p) for p in [pid, *guest])
    assert not s.pidfile.exists() and not s.socket.exists()
