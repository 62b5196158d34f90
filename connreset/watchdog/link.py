"""How a controller reaches a node's watchdog: arm it, hand it undos, renew, claim, disarm.

Both links speak the protocol of :mod:`connreset.watchdog.agent`: :class:`LocalLink` calls its
functions in process, for a watchdog on this machine (the lab's); :class:`ExecLink` runs the
agent's command line on the node through a node access (SSH, ``docker exec``), after copying the
agent there. One link may serve several nodes (every lab node lives on this machine).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from connreset.errors import BackendError
from connreset.kernel.node import NodeIO
from connreset.watchdog import agent

Claim = Literal["ours", "watchdog", "unheld"]
_CLAIMS: Mapping[int, Claim] = {agent.CLAIMED: "ours", agent.TAKEN: "watchdog", agent.GONE: "unheld"}
#: nodes' undos → the argv prefix that runs where the undo belongs (None: out of the watchdog's reach)
Enter = Callable[[str, bool], Sequence[str] | None]


class WatchdogUnavailable(BackendError):
    """No watchdog can run there (e.g. no python3 on the node); the run goes on with the journal."""


class WatchdogLink(Protocol):
    """One watchdog, as its controller sees it."""

    place: str  # where it runs, for people: "this machine", a node's name
    directory: str

    def enter(self, node: str, host: bool) -> Sequence[str] | None:
        """The prefix that runs an argv where ``node``'s undo belongs (``host``: the initial
        network namespace), as the watchdog runs it; None if the watchdog cannot."""
        ...

    async def arm(self, lease: float, run_id: str) -> int:
        """Start the watchdog with a fresh lease; return its pid."""
        ...

    async def exists(self) -> bool: ...

    async def hold(self, op: Mapping[str, Any]) -> None: ...

    async def renew(self) -> None: ...

    async def claim(self, op_id: int) -> Claim: ...

    async def status(self) -> tuple[str, float]:
        """Its state (``armed``, ``firing``, ``fired``, ``disarmed``) and its lease in seconds."""
        ...

    async def result(self, op_id: int, wait: float) -> Mapping[str, Any] | None: ...

    async def disarm(self, wait: float) -> Mapping[str, Any]:
        """Stop it unless it fired, wait for it to exit, and say what it did."""
        ...

    async def remove(self) -> None: ...


def _config(lease: float, run_id: str, final: Sequence[Sequence[str]]) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "lease": lease,
        "poll": min(0.5, lease / 10),
        "final": [list(a) for a in final],
    }


class LocalLink:
    """A watchdog on this machine, reached in process (files) and started as a detached process."""

    place = "this machine"

    def __init__(
        self, directory: str | os.PathLike[str], enter: Enter, final: Sequence[Sequence[str]] = ()
    ) -> None:
        self.directory = os.fspath(directory)
        self._enter = enter
        self._final = final

    def __repr__(self) -> str:
        return f"<LocalLink {self.directory}>"

    def enter(self, node: str, host: bool) -> Sequence[str] | None:
        return self._enter(node, host)

    async def arm(self, lease: float, run_id: str) -> int:
        agent.prepare(self.directory, _config(lease, run_id, self._final))
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-S",  # the standard library only: no site, a faster start
            agent.__file__,
            "start",
            self.directory,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            agent.remove(self.directory)
            raise WatchdogUnavailable(f"the watchdog did not start: {err.decode().strip()[:300]}")
        return int(out.decode().strip())

    async def exists(self) -> bool:
        return Path(self.directory, "config.json").exists()

    async def hold(self, op: Mapping[str, Any]) -> None:
        agent.hold(self.directory, dict(op))

    async def renew(self) -> None:
        agent.renew(self.directory)

    async def claim(self, op_id: int) -> Claim:
        return _CLAIMS[agent.claim(self.directory, op_id)]

    async def status(self) -> tuple[str, float]:
        with open(os.path.join(self.directory, "config.json")) as f:
            lease = float(json.load(f)["lease"])
        return agent.state_of(self.directory), lease

    def finishes_cluster(self) -> bool:
        """Its final actions remove what the cluster made (the lab's ``lab down``)."""
        return bool(self._final)

    def hold_for(self, pid: int) -> None:
        """``connreset restore`` (``pid``) renews this watchdog: a lab opened meanwhile leaves it armed."""
        agent.mark_restorer(self.directory, pid)

    async def result(self, op_id: int, wait: float) -> Mapping[str, Any] | None:
        return await asyncio.to_thread(agent.result, self.directory, op_id, wait)

    async def disarm(self, wait: float) -> Mapping[str, Any]:
        return await asyncio.to_thread(agent.disarm, self.directory, wait)

    async def remove(self) -> None:
        agent.remove(self.directory)


#: Run on the node with the agent's source on stdin: make DIR (refusing one that exists, so nothing
#: is followed or reused) with its config, then put the agent in it.
_BOOT = (
    "import json, os, sys; d = sys.argv[1]; src = sys.stdin.read(); ns = {'__name__': 'agent'}; "
    "exec(compile(src, 'agent.py', 'exec'), ns); ns['prepare'](d, json.loads(sys.argv[2])); "
    "fd = os.open(os.path.join(d, 'agent.py'), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600); "
    "os.write(fd, src.encode()); os.close(fd)"
)


class ExecLink:
    """A watchdog on a node, reached through its node access: the agent is copied into its
    directory and every operation is one run of its command line there."""

    def __init__(
        self,
        io: NodeIO,
        node: str,
        directory: str,
        enter: Enter,
        python: str = "python3",
    ) -> None:
        self.io = io
        self.place = node
        self.directory = directory
        self._enter = enter
        self._python = python

    def __repr__(self) -> str:
        return f"<ExecLink {self.place}:{self.directory}>"

    def enter(self, node: str, host: bool) -> Sequence[str] | None:
        return self._enter(node, host)

    @property
    def _agent(self) -> str:
        return f"{self.directory}/agent.py"

    async def _run(self, *args: str, stdin: bytes | None = None, timeout: float = 30.0) -> tuple[int, str]:
        got = await self.io.exec(
            self.place, [self._python, "-I", self._agent, *args], stdin=stdin, timeout=timeout
        )
        if got.returncode not in (0, 1, agent.TAKEN, agent.GONE):
            raise BackendError(f"{self.place}: watchdog {args[0]} failed: {got.stderr.strip()[:300]}")
        return got.returncode, got.stdout

    async def arm(self, lease: float, run_id: str) -> int:
        found = await self.io.exec(
            self.place, [self._python, "-c", "import sys; print(sys.version_info >= (3, 8))"]
        )
        if found.stdout.strip() != "True":
            why = found.stderr.strip()[:200] or f"{self._python} is older than 3.8"
            raise WatchdogUnavailable(f"{self.place}: no watchdog: it needs {self._python} ≥ 3.8 ({why})")
        made = await self.io.exec(
            self.place,
            [self._python, "-I", "-c", _BOOT, self.directory, json.dumps(_config(lease, run_id, ()))],
            stdin=Path(agent.__file__).read_bytes(),
        )
        if not made.ok:
            raise WatchdogUnavailable(
                f"{self.place}: cannot prepare {self.directory}: {made.stderr.strip()[:300]}"
            )
        code, out = await self._run("start", self.directory)
        if code != 0:
            raise WatchdogUnavailable(f"{self.place}: the watchdog did not start")
        return int(out.strip())

    async def exists(self) -> bool:
        got = await self.io.exec(self.place, ["test", "-f", f"{self.directory}/config.json"])
        return got.ok

    async def hold(self, op: Mapping[str, Any]) -> None:
        await self._run("hold", self.directory, stdin=json.dumps(dict(op)).encode())

    async def renew(self) -> None:
        await self._run("renew", self.directory)

    async def claim(self, op_id: int) -> Claim:
        code, _ = await self._run("claim", self.directory, str(op_id))
        return _CLAIMS[code]

    async def status(self) -> tuple[str, float]:
        state = await self.io.exec(self.place, ["cat", "--", f"{self.directory}/state"])
        config = await self.io.exec(self.place, ["cat", "--", f"{self.directory}/config.json"])
        if not (state.ok and config.ok):
            raise BackendError(f"{self.place}: cannot read the watchdog's state")
        return state.stdout.strip(), float(json.loads(config.stdout)["lease"])

    async def result(self, op_id: int, wait: float) -> Mapping[str, Any] | None:
        code, out = await self._run("result", self.directory, str(op_id), str(wait), timeout=wait + 30)
        found = json.loads(out) if code == 0 and out.strip() else None
        return found if isinstance(found, dict) else None

    async def disarm(self, wait: float) -> Mapping[str, Any]:
        _, out = await self._run("disarm", self.directory, str(wait), timeout=wait + 30)
        data = json.loads(out)
        return data if isinstance(data, dict) else {}

    async def remove(self) -> None:
        await self.io.exec(self.place, ["rm", "-rf", "--", self.directory])
        await self.io.exec(
            self.place, ["rmdir", "--ignore-fail-on-non-empty", "--", str(Path(self.directory).parent)]
        )
