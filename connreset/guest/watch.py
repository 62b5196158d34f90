"""The QEMU that virtme-ng starts, tied to the controller's life (``vng --qemu`` points here).

virtme-ng forks QEMU from its own ``virtme-run`` process, so a controller killed with ``-9`` would
leave it running. This wrapper is what ``virtme-run`` starts instead: it opens a pidfd on the
controller (``CONNRESET_GUEST_OWNER``), starts the real QEMU as its child with
``PR_SET_PDEATHSIG=SIGKILL``, and kills it the moment the controller is gone. Without the variable
(``qemu --version``, a plain ``vng``) it is QEMU itself.
"""

from __future__ import annotations

import ctypes
import os
import select
import shutil
import signal
import sys

OWNER_ENV = "CONNRESET_GUEST_OWNER"  # "PID START" (start: field 22 of /proc/PID/stat)
QEMU_ENV = "CONNRESET_QEMU"
PR_SET_PDEATHSIG = 1


def start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (tells a reused pid apart)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[19]


def owner_token(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{pid} {start_time(pid)}"


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def main() -> None:
    real = os.environ.get(QEMU_ENV) or shutil.which("qemu-system-x86_64") or "/usr/bin/qemu-system-x86_64"
    argv = [real, *sys.argv[1:]]
    owner = os.environ.get(OWNER_ENV)
    if not owner:
        os.execv(real, argv)
    pid_text, _, start = owner.partition(" ")
    try:
        owner_fd = os.pidfd_open(int(pid_text))
        alive = start_time(int(pid_text)) == start
    except (OSError, ValueError):
        alive = False
    if not alive:
        print("connreset: the controller is gone; not starting the guest", file=sys.stderr)
        sys.exit(255)
    me = os.getpid()
    child = os.fork()
    if child == 0:
        _die_with_parent()
        if os.getppid() != me:
            os._exit(255)
        os.execv(real, argv)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, _f: os.kill(child, s))
    child_fd = os.pidfd_open(child)
    while True:
        try:
            ready, _, _ = select.select([owner_fd, child_fd], [], [])
        except InterruptedError:
            continue
        if owner_fd in ready:
            os.kill(child, signal.SIGKILL)
        _, status = os.waitpid(child, 0)
        sys.exit(os.waitstatus_to_exitcode(status) & 0xFF if os.WIFEXITED(status) else 255)


if __name__ == "__main__":
    main()
