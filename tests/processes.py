"""Ending a process a test started, by its PID: its whole process group, gently first."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def stop_group(process: subprocess.Popen[str] | None, grace: float = 5.0) -> None:
    """SIGTERM to the group the process leads, SIGKILL after ``grace`` seconds, then SIGKILL to
    anything else left in the group."""
    if process is None:
        return
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(grace)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
