"""Pods with kubelet semantics: real processes in pod namespaces, restartPolicy Always.

A pod's process runs under ``nsenter --net`` in its own session (so Ctrl-C on the controller does
not reach it). When it exits, the pod is ``Error`` (or ``Completed`` for exit 0) and then
``CrashLoopBackOff`` while it waits out kubelet's back-off: 10 s, doubling, capped at 300 s, reset
after 10 minutes of running. ``time_scale`` multiplies those durations (0.1 makes 10 s into 1 s).

A pod with a liveness probe (:class:`~connreset.testbed.probes.Liveness`) is probed from its node's
namespace (:mod:`connreset.lab.probes`) while its process runs; after ``failure_threshold``
failures in a row the process is killed (the line ``kubelet: Liveness probe failed ...`` goes to
the pod's log, where ``kubectl describe`` would show the event) and restarted with the back-off.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
from collections.abc import Callable, Mapping, Sequence

from connreset.guest.timing import scaled
from connreset.lab.plumbing import PodNet
from connreset.lab.probes import NodeProber
from connreset.testbed import PodPhase, PodStatus
from connreset.testbed.probes import Liveness

BACKOFF_START, BACKOFF_CAP, BACKOFF_RESET = 10.0, 300.0, 600.0
STOP_GRACE = 2.0
LOG_LINES = 20_000


def backoff(crashes: int, time_scale: float = 1.0) -> float:
    """kubelet's delay before restart number ``crashes`` (1-based)."""
    return float(min(BACKOFF_START * 2.0 ** (crashes - 1), BACKOFF_CAP) * time_scale)


class Pod:
    """One pod: a namespace, an argv, its process, phase, restart count and logs."""

    def __init__(
        self,
        name: str,
        deployment: str,
        net: PodNet,
        node: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        time_scale: float,
        on_change: Callable[[Pod], None],
        liveness: Liveness | None = None,
        prober: NodeProber | None = None,
    ) -> None:
        self.name = name
        self.deployment = deployment
        self.net = net
        self.node = node
        self.argv = list(argv)
        self.env = {**os.environ, **env}
        self.time_scale = time_scale
        self.phase: PodPhase = "Pending"
        self.restarts = 0
        self.logs: collections.deque[str] = collections.deque(maxlen=LOG_LINES)
        self._on_change = on_change
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.started = asyncio.Event()  # set once the first start attempt is over
        self.log_sink: Callable[[str, str, str], None] | None = None  # (deployment, pod, line)
        self.liveness = liveness
        self._prober = prober
        self.probes_failed = 0  # liveness probes that failed, over the pod's life
        self.liveness_kills = 0

    def status(self) -> PodStatus:
        return PodStatus(self.name, self.deployment, self.node, self.net.ip, self.phase, self.restarts)

    def _set(self, phase: PodPhase) -> None:
        if phase != self.phase:
            self.phase = phase
            self._on_change(self)

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"pod {self.name}")

    async def _spawn(self) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            "nsenter",
            f"--net=/run/netns/{self.net.ns}",
            "--",
            *self.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )

    async def _supervise(self) -> None:
        crashes = 0
        loop = asyncio.get_running_loop()
        while not self._stopping:
            try:
                self._proc = await self._spawn()
            except OSError as exc:
                self.logs.append(f"failed to start: {exc}")
                code, started = 128, loop.time()
                self.started.set()
            else:
                started = loop.time()
                self._set("Running")
                self.started.set()
                probing = self._start_probing(self._proc)
                assert self._proc.stdout is not None
                async for raw in self._proc.stdout:
                    self._log(raw.decode(errors="replace").rstrip("\n"))
                code = await self._proc.wait()
                if probing is not None:
                    probing.cancel()
                    await asyncio.gather(probing, return_exceptions=True)
            if self._stopping:
                break
            if loop.time() - started >= BACKOFF_RESET * self.time_scale:
                crashes = 0
            crashes += 1
            self.restarts += 1
            self._set("Completed" if code == 0 else "Error")
            self._set("CrashLoopBackOff")
            await asyncio.sleep(backoff(crashes, self.time_scale))

    def _log(self, line: str) -> None:
        self.logs.append(line)
        if self.log_sink is not None:
            self.log_sink(self.deployment, self.name, line)

    def _start_probing(self, proc: asyncio.subprocess.Process) -> asyncio.Task[None] | None:
        if self.liveness is None or self._prober is None:
            return None
        return asyncio.create_task(self._probe(proc, self.liveness, self._prober), name=f"probe {self.name}")

    async def _probe(self, proc: asyncio.subprocess.Process, liveness: Liveness, prober: NodeProber) -> None:
        """kubelet's liveness loop for one container: probe every period; kill after
        ``failure_threshold`` failures in a row."""
        loop = asyncio.get_running_loop()
        # in a slow guest kubelet's pace is stretched too, or a pod that starts slowly there is
        # killed before it ever listens (connreset.guest.timing; on the host it is as written)
        await asyncio.sleep(scaled(liveness.initial_delay * self.time_scale))
        failures = 0
        while proc.returncode is None and not self._stopping:
            began = loop.time()
            reason = await prober.probe(liveness, self.net.ip)
            if reason is None:
                failures = 0
            else:
                failures += 1
                self.probes_failed += 1
                if failures >= liveness.failure_threshold:
                    self.liveness_kills += 1
                    self._log(
                        f"kubelet: Liveness probe failed: {reason} ({failures} in a row); "
                        "the container will be restarted"
                    )
                    await _terminate(proc)
                    return
            await asyncio.sleep(max(scaled(liveness.period * self.time_scale) - (loop.time() - began), 0))

    async def stop(self) -> None:
        """SIGTERM the pod's process group, SIGKILL after a grace period, and wait."""
        self._stopping = True
        proc = self._proc
        if proc is not None:
            await _terminate(proc)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def _terminate(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the process's group, SIGKILL after the grace period, and wait for it."""
    if proc.returncode is not None:
        return
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), STOP_GRACE)
    except TimeoutError:
        _signal_group(proc.pid, signal.SIGKILL)
        await proc.wait()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the process group the pod's process leads (it was started in a new session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
