"""A per-pod index of log lines, fed by the cluster's log stream.

Log assertions read it instead of fetching whole logs: they wait for new lines (no polling), so
on a real cluster a run makes one log stream per pod rather than hundreds of API calls a second.
Lines of earlier containers stay: a restart does not erase what a pod said before it.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import re
from collections.abc import Collection

from connreset.guest.timing import scaled

KEEP = 50_000  # lines kept per pod


class LogIndex:
    """Lines by pod, numbered in the order they arrived; waiters wake on every new line."""

    def __init__(self, keep: int = KEEP) -> None:
        self._keep = keep
        self._seq = itertools.count(1)
        self._by_pod: dict[str, collections.deque[tuple[int, str]]] = {}
        self._deployment: dict[str, str] = {}
        self._changed = asyncio.Event()
        self._last = 0

    def add(self, deployment: str, pod: str, line: str) -> None:
        """One line a pod wrote (the log stream's sink)."""
        lines = self._by_pod.get(pod)
        if lines is None:
            lines = self._by_pod[pod] = collections.deque(maxlen=self._keep)
        self._deployment[pod] = deployment
        self._last = next(self._seq)
        lines.append((self._last, line))
        self._changed.set()

    def forget(self, deployment: str) -> None:
        """Drop what earlier pods of that name said: a Deployment made again starts afresh."""
        for pod in [p for p, d in self._deployment.items() if d == deployment]:
            del self._by_pod[pod], self._deployment[pod]

    def pods(self, deployment: str) -> list[str]:
        return [p for p, d in self._deployment.items() if d == deployment]

    def last_seq(self) -> int:
        """The number of the newest line (0: none yet)."""
        return self._last

    def count(self, deployment: str, pattern: re.Pattern[str], after: int = 0) -> int:
        """Lines of the deployment's pods matching ``pattern`` that arrived after ``after``."""
        return sum(
            1
            for pod in self.pods(deployment)
            for seq, line in self._by_pod[pod]
            if seq > after and pattern.search(line)
        )

    def first(
        self, deployment: str, pattern: re.Pattern[str], pods: Collection[str] | None = None
    ) -> str | None:
        """The first matching line of the deployment's pods (of ``pods`` only, if given)."""
        for pod in self.pods(deployment):
            if pods is not None and pod not in pods:
                continue
            for _, line in self._by_pod[pod]:
                if pattern.search(line):
                    return line
        return None

    def since(self, deployment: str, after: int = 0) -> list[str]:
        """The deployment's lines that arrived after ``after`` (newest of each pod first)."""
        return self._since(deployment, after)

    def _since(self, deployment: str, after: int) -> list[str]:
        """Lines of the deployment's pods that arrived after ``after`` (read from each pod's end)."""
        out = []
        for pod in self.pods(deployment):
            for seq, line in reversed(self._by_pod[pod]):
                if seq <= after:
                    break
                out.append(line)
        return out

    async def wait_for(self, deployment: str, pattern: re.Pattern[str], within: float) -> str | None:
        """The first matching line, waiting up to ``within`` seconds for one to arrive.

        Each line is looked at once: after the first scan, only lines that arrived since. In a slow
        guest ``within`` is stretched by its measured slowness (:mod:`connreset.guest.timing`).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + scaled(within)
        found = self.first(deployment, pattern)
        scanned = self.last_seq()
        while found is None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            self._changed.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._changed.wait()
            except TimeoutError:
                pass
            new, scanned = self._since(deployment, scanned), self.last_seq()
            found = next((line for line in new if pattern.search(line)), None)
        return found
