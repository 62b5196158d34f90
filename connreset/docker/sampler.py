"""One shell per node answering conntrack samples: a round trip per sample, not a ``docker exec``.

``docker exec`` starts a process in the container through the engine (about 90 ms with podman's
service here), too slow for ``Observe`` at 10 Hz on many nodes. The sampler is one long-lived
``docker exec -i NODE sh -c LOOP`` per node: for each line it reads, it prints
``/proc/net/stat/nf_conntrack`` with shell builtins only, then an end marker.
"""

from __future__ import annotations

import asyncio

from connreset.docker import errors
from connreset.docker.engine import DockerCli, stop
from connreset.errors import BackendError, TimedOut, Unreachable
from connreset.kernel import conntrack

END = "@@connreset-end@@"
LOOP = (
    f'while read -r _; do while IFS= read -r l; do printf "%s\\n" "$l"; done < {conntrack.STAT_PATH}; '
    f'echo "{END}"; done'
)


class Sampler:
    """The sampler shell of one node container, started on first use and restarted if it died."""

    def __init__(self, cli: DockerCli, node: str, container: str, cluster: str) -> None:
        self.cli = cli
        self.node = node
        self.container = container
        self.cluster = cluster
        self.starts = 0  # shells started, for tests
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    async def sample(self, timeout: float) -> str:
        """``/proc/net/stat/nf_conntrack`` as the node sees it.

        Raises:
            TimedOut: the shell did not answer within ``timeout`` (the next sample starts another).
            Unreachable: the engine is unreachable.
            NodeUnavailable: the node's container is gone or stopped.
            BackendError: the shell ended otherwise (the next sample starts another).
        """
        async with self._lock:
            proc = self._proc
            try:
                if proc is None or proc.returncode is not None:
                    proc = self._proc = await self.cli.start(["exec", "-i", self.container, "sh", "-c", LOOP])
                    self.starts += 1
                assert proc.stdin is not None and proc.stdout is not None
                async with asyncio.timeout(timeout):
                    proc.stdin.write(b"\n")
                    await proc.stdin.drain()
                    data = await proc.stdout.readuntil((END + "\n").encode())
                return data.decode("utf-8", errors="replace").removesuffix(END + "\n")
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError) as exc:
                failure: BaseException = exc
            self._proc = None  # out of step or dead: the next sample starts another
            err = await _drain(proc)
        if isinstance(failure, TimeoutError):
            sampler = ["sh", "-c", "(conntrack sampler)"]
            raise TimedOut(errors.timed_out(self.node, sampler, timeout), node=self.node)
        if errors.is_unreachable(err):
            raise Unreachable(errors.unreachable(err), node=self.node)
        if errors.is_daemon_error(err):
            raise errors.daemon_failure(self.node, self.container, err, self.cluster)
        raise BackendError(
            f"{self.node}: the conntrack sampler ended: {errors.first_line(err) or failure}", node=self.node
        )

    async def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()  # the loop's read sees the end and the shell exits
        try:
            async with asyncio.timeout(2):
                await proc.wait()
        except TimeoutError:
            await stop(proc)


async def _drain(proc: asyncio.subprocess.Process | None) -> str:
    """Stop a failed sampler and return what it said on stderr."""
    if proc is None:
        return ""
    await stop(proc)
    if proc.stderr is None:
        return ""
    try:
        async with asyncio.timeout(1):
            return (await proc.stderr.read()).decode("utf-8", errors="replace")
    except (TimeoutError, OSError):
        return ""
