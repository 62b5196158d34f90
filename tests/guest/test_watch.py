"""QEMU dies with the controller: the ``vng --qemu`` wrapper, with a real process standing in for
QEMU (``sleep``) and a real process standing in for the controller."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from connreset.guest import watch


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def _until(check: object, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


@pytest.fixture
def owner() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "1000"])
    yield proc
    proc.kill()
    proc.wait()


def _wrapper(token: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, watch.QEMU_ENV: "/bin/sleep", watch.OWNER_ENV: token}
    return subprocess.Popen([sys.executable, "-m", "connreset.guest.watch", "1000"], env=env)


def test_qemu_is_killed_when_the_controller_is_killed(owner: subprocess.Popen[bytes]) -> None:
    wrapper = _wrapper(watch.owner_token(owner.pid))
    try:
        assert _until(lambda: _children(wrapper.pid)), "the stand-in QEMU never started"
        (qemu,) = _children(wrapper.pid)
        owner.kill()  # kill -9 of the controller
        assert wrapper.wait(timeout=10) == 255
        assert _gone(qemu)
    finally:
        wrapper.kill()
        wrapper.wait()


def test_qemu_is_killed_when_the_wrapper_itself_is_killed(owner: subprocess.Popen[bytes]) -> None:
    wrapper = _wrapper(watch.owner_token(owner.pid))
    assert _until(lambda: _children(wrapper.pid))
    (qemu,) = _children(wrapper.pid)
    os.kill(wrapper.pid, signal.SIGKILL)
    wrapper.wait()
    assert _until(lambda: _gone(qemu)), "PR_SET_PDEATHSIG did not kill the stand-in QEMU"


def test_no_qemu_starts_for_a_controller_already_gone(owner: subprocess.Popen[bytes]) -> None:
    token = watch.owner_token(owner.pid)
    owner.kill()
    owner.wait()
    wrapper = _wrapper(token)
    assert wrapper.wait(timeout=10) == 255


def test_a_reused_pid_is_not_taken_for_the_controller(owner: subprocess.Popen[bytes]) -> None:
    pid, start = watch.owner_token(owner.pid).split()
    wrapper = _wrapper(f"{pid} {int(start) + 1}")
    assert wrapper.wait(timeout=10) == 255


def test_without_an_owner_it_is_qemu_itself() -> None:
    env = {k: v for k, v in os.environ.items() if k != watch.OWNER_ENV}
    env[watch.QEMU_ENV] = "/bin/echo"
    out = subprocess.run(
        [sys.executable, "-m", "connreset.guest.watch", "hello"], env=env, capture_output=True, text=True
    )
    assert out.stdout == "hello\n"
