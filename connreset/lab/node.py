"""A lab node's own process: a ``sleep`` living in the node's namespace.

Its ``/proc/PID/net/stat/nf_conntrack`` holds the node's conntrack count and counters, so the lab
reads them without starting a process per sample (the same numbers as ``nf_conntrack_count`` and
``conntrack -S``).
"""

from __future__ import annotations

import asyncio
import os

from connreset.errors import BackendError


class LabNode:
    """One node namespace and the process that keeps a window into it."""

    def __init__(self, name: str, ns: str) -> None:
        self.name = name
        self.ns = ns
        self._pause: asyncio.subprocess.Process | None = None

    @property
    def ns_inode(self) -> int:
        return os.stat(f"/run/netns/{self.ns}").st_ino

    def proc_net(self, path: str) -> str:
        """``/proc/net/...`` as the node sees it."""
        if self._pause is None or self._pause.returncode is not None:
            raise BackendError(f"{self.name} is not running")
        return f"/proc/{self._pause.pid}/net/{path.removeprefix('/proc/net/')}"

    async def start(self) -> None:
        self._pause = await asyncio.create_subprocess_exec(
            "nsenter",
            f"--net=/run/netns/{self.ns}",
            "--",
            "sleep",
            "infinity",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,  # never the controller's: a pipe it holds would
            stderr=asyncio.subprocess.DEVNULL,  # outlive a killed controller and never end
            start_new_session=True,
        )

    async def stop(self) -> None:
        if self._pause is not None and self._pause.returncode is None:
            self._pause.kill()
            await self._pause.wait()
