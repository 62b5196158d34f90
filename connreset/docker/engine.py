"""The ``docker`` CLI, run as a subprocess: argv lists only, one deadline per call.

The CLI reads ``DOCKER_HOST`` (and its contexts) itself, so it reaches whatever engine a kind user's
own ``docker`` reaches: Docker Engine, or podman's Docker-compatible service. A call past its
deadline kills the CLI process it started (by PID); the command in the container may run on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from connreset._support.logs import get_logger
from connreset.docker import errors
from connreset.errors import BackendError, TimedOut, ToolMissing, Unreachable
from connreset.kernel.node import ExecResult

log = get_logger(__name__)


class DockerCli:
    """Runs ``docker ARGS`` with this process's environment.

    Args:
        program: the CLI, by name (looked up in ``PATH``) or path.
        timeout: seconds a call may take when the caller gives none.
    """

    def __init__(self, program: str = "docker", timeout: float = 60.0) -> None:
        self.program = program
        self.timeout = timeout
        self.calls = 0  # CLI processes started, for tests and benchmarks

    def __repr__(self) -> str:
        return f"<DockerCli {self.program} at {errors.where()}>"

    async def start(self, args: Sequence[str]) -> asyncio.subprocess.Process:
        """Start ``docker ARGS`` with pipes on stdin, stdout and stderr.

        Raises:
            ToolMissing: the CLI is not installed there.
        """
        try:
            proc = await asyncio.create_subprocess_exec(
                self.program,
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except (FileNotFoundError, PermissionError, NotADirectoryError):
            raise ToolMissing(errors.cli_missing(self.program)) from None
        self.calls += 1
        return proc

    async def run(
        self, args: Sequence[str], *, stdin: bytes | None = None, timeout: float | None = None
    ) -> ExecResult:
        """Run ``docker ARGS`` to its end; its exit code is in the result.

        Raises:
            ToolMissing: the CLI is missing.
            Unreachable: the engine is unreachable.
            TimeoutError: the deadline passed (the CLI process was killed).
        """
        limit = timeout if timeout is not None else self.timeout
        proc = await self.start(args)
        try:
            async with asyncio.timeout(limit):
                out, err = await proc.communicate(stdin or b"")
        except BaseException:
            await stop(proc)
            raise
        stderr = err.decode("utf-8", errors="replace")
        code = proc.returncode if proc.returncode is not None else 255
        if code != 0 and errors.is_unreachable(stderr):
            raise Unreachable(errors.unreachable(stderr))
        return ExecResult(tuple(args), code, out.decode("utf-8", errors="replace"), stderr)

    async def check(self, args: Sequence[str], *, what: str, timeout: float | None = None) -> str:
        """Run ``docker ARGS`` and return its stdout.

        Raises:
            TimedOut: it did not finish within ``timeout``.
            BackendError: it exited non-zero (naming ``what``), or as :meth:`run`.
        """
        try:
            result = await self.run(args, timeout=timeout)
        except TimeoutError:
            limit = timeout if timeout is not None else self.timeout
            raise TimedOut(f"docker: {what} did not finish within {limit:g} s") from None
        if not result.ok:
            raise BackendError(errors.exec_failed(what, args, result.returncode, result.stderr))
        return result.stdout

    async def server_version(self) -> str:
        """The engine's version; proves both the CLI and the engine are there.

        Raises:
            ToolMissing: the CLI is missing.
            Unreachable: the engine is unreachable.
        """
        result = await self.run(["version", "--format", "{{.Server.Version}}"], timeout=self.timeout)
        version = result.stdout.strip()
        if not result.ok or not version or version == "<no value>":
            raise Unreachable(errors.unreachable(result.stderr or result.stdout))
        return version


async def stop(proc: asyncio.subprocess.Process) -> None:
    """Kill a CLI process this module started (by its PID), and reap it."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    with contextlib.suppress(Exception):
        async with asyncio.timeout(5):
            await proc.wait()
