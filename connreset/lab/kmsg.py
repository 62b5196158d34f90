"""The kernel's conntrack log lines, attributed to lab nodes.

This kernel writes ``nf_conntrack: table full in netns <inode>, dropping packet`` (rate-limited);
the inode names the network namespace, so each line is attributed to the node whose namespace it
is. The watcher reads ``/dev/kmsg`` from the moment the lab starts (older lines are skipped).
"""

from __future__ import annotations

import asyncio
import collections
import os
import re

from connreset._support.logs import get_logger

log = get_logger("connreset.lab")

_NETNS = re.compile(r"nf_conntrack: .*?table full in netns (\d+)")
KEEP = 1000


class KernelLog:
    """Collects conntrack lines from /dev/kmsg, per network-namespace inode."""

    def __init__(self) -> None:
        self._fd: int | None = None
        self.lines: dict[int, collections.deque[str]] = {}
        self.counts: collections.Counter[int] = collections.Counter()
        self.unattributed = 0

    def start(self) -> None:
        try:
            fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            log.warning("cannot read the kernel log; table-full lines will not be attributed", error=str(exc))
            return
        os.lseek(fd, 0, os.SEEK_END)
        self._fd = fd
        asyncio.get_running_loop().add_reader(fd, self._drain)

    def _drain(self) -> None:
        assert self._fd is not None
        while True:
            try:
                record = os.read(self._fd, 8192)
            except BlockingIOError:
                return
            except BrokenPipeError:  # the ring buffer overwrote records we had not read
                continue
            self.feed(record.decode(errors="replace"))

    def feed(self, record: str) -> None:
        """One /dev/kmsg record: ``PRIO,SEQ,USEC,FLAGS;MESSAGE``."""
        message = record.split(";", 1)[-1].strip()
        if "nf_conntrack" not in message:
            return
        match = _NETNS.search(message)
        if match is None:
            self.unattributed += 1
            return
        inode = int(match.group(1))
        self.counts[inode] += 1
        self.lines.setdefault(inode, collections.deque(maxlen=KEEP)).append(message)

    def stop(self) -> None:
        if self._fd is not None:
            asyncio.get_running_loop().remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None
