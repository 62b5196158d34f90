"""The bursty load helper: it spins one core in bursts, ends by itself, and the test ends it."""

from __future__ import annotations

import os
import time

from tests.sweep.bursty import bursty_load


def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_the_load_spins_in_bursts_on_one_core_and_ends_with_the_with() -> None:
    with bursty_load(limit=30, on=(0.3, 0.3), off=(0.3, 0.3)) as load:
        pid = load.process.pid
        assert os.sched_getaffinity(pid) == {load.core}
        assert load.process.stdout is not None
        seen = [load.process.stdout.readline().split()[0] for _ in range(4)]  # its own reports
        assert seen == ["on", "off", "on", "off"]
        assert _cpu_seconds(pid) > 0.2  # it spun for at least one burst
        assert load.process.poll() is None
    assert load.process.poll() is not None  # ended by the test, long before its limit


def test_the_load_ends_by_itself_at_its_limit() -> None:
    t0 = time.monotonic()
    with bursty_load(limit=0.5, on=(0.1, 0.1), off=(0.1, 0.1)) as load:
        load.process.wait(timeout=10)  # it ends on its own
    assert load.process.returncode == 0
    assert time.monotonic() - t0 < 10
