"""Controlled CPU noise for the sweep tests: a bursty busy loop on one core.

:func:`bursty_load` starts one child process pinned to one core that spins for ``on`` seconds,
rests for ``off`` seconds (each drawn at random from its range, from ``seed``), and so on. It is
bounded twice: the child ends by itself after ``limit`` seconds, and the context manager ends it
(by its pid) when the test leaves the ``with``. The child reports each burst on stdout, so a test
can say what load its sweep ran under.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import attrs

_CHILD = r"""
import os, random, sys, time
core, limit, seed, on_lo, on_hi, off_lo, off_hi = sys.argv[1:]
os.sched_setaffinity(0, {int(core)})
rng = random.Random(int(seed))
end = time.monotonic() + float(limit)
print("started", flush=True)
while time.monotonic() < end:
    on = rng.uniform(float(on_lo), float(on_hi))
    stop = min(end, time.monotonic() + on)
    print(f"on {on:.2f}", flush=True)
    while time.monotonic() < stop:
        pass
    off = rng.uniform(float(off_lo), float(off_hi))
    print(f"off {off:.2f}", flush=True)
    time.sleep(max(0.0, min(off, end - time.monotonic())))
"""


@attrs.frozen
class Load:
    """The running load: its process, the core it spins on, and its pattern."""

    process: subprocess.Popen[str]
    core: int
    on: tuple[float, float]
    off: tuple[float, float]
    limit: float

    @property
    def words(self) -> str:
        return (
            f"a busy loop on core {self.core}, on for {self.on[0]:g}-{self.on[1]:g} s and off for "
            f"{self.off[0]:g}-{self.off[1]:g} s at random, for at most {self.limit:g} s"
        )


@contextmanager
def bursty_load(
    *,
    limit: float,
    core: int | None = None,
    seed: int = 1,
    on: tuple[float, float] = (2.0, 4.0),
    off: tuple[float, float] = (2.0, 4.0),
) -> Iterator[Load]:
    """Bursts of one busy core while the ``with`` body runs, for at most ``limit`` seconds.

    ``core`` defaults to the last core this process may run on.
    """
    if limit <= 0:
        raise ValueError("limit must be positive")
    allowed = sorted(os.sched_getaffinity(0))
    chosen = allowed[-1] if core is None else core
    argv = [sys.executable, "-c", _CHILD, str(chosen), str(limit), str(seed), *map(str, (*on, *off))]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline().strip()  # the child is pinned and running
        if first != "started":
            raise RuntimeError(f"the load did not start: {first!r}")
        yield Load(process, chosen, on, off, limit)
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
