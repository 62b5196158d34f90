"""The watchdog's protocol, on this machine without root: it fires when its lease runs out, exits
when disarmed, and, however claims and firing interleave, applies each undo at most once.

Undos here append their id to a file (``tee -a``) and are read back with ``grep -x``, so a test
can count how often each was applied."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connreset.kernel.node import ExecResult
from connreset.watchdog import ExecLink, LocalLink, WatchdogUnavailable, agent
from tests.watchdog.test_lab import wait_for_exit


def op(op_id: int, log: Path) -> dict[str, object]:
    return {
        "id": op_id,
        "what": f"undo {op_id}",
        "apply": {"argv": ["tee", "-a", str(log)], "stdin": f"{op_id}\n"},
        "verify": {"argv": ["grep", "-x", str(op_id), str(log)], "stdout": str(op_id)},
    }


def applied(log: Path) -> list[int]:
    return sorted(int(x) for x in log.read_text().split()) if log.exists() else []


def here(node: str, host: bool) -> Sequence[str]:
    return []


async def test_the_lease_runs_out_and_it_restores_then_exits(tmp_path: Path) -> None:
    log = tmp_path / "applied"
    link = LocalLink(tmp_path / "wd", here, final=[["touch", str(tmp_path / "final-ran")]])
    pid = await link.arm(0.3, "run-1")
    for i in (1, 2, 3):
        await link.hold(op(i, log))
    assert await asyncio.to_thread(wait_for_exit, pid, 30.0)
    assert applied(log) == [1, 2, 3]
    assert (tmp_path / "final-ran").exists()
    assert (tmp_path / "wd" / "state").read_text() == "fired"
    assert await link.claim(2) == "watchdog"  # a late controller sees it taken...
    assert (await link.result(2, 1.0) or {}).get("ok") is True  # ...and reads how it went
    events = [json.loads(line)["event"] for line in (tmp_path / "wd" / "log").read_text().splitlines()]
    assert events[:2] == ["guarding", "lease expired: restoring"] and events[-1] == "exit"


async def test_disarmed_it_exits_at_once_and_applies_nothing(tmp_path: Path) -> None:
    log = tmp_path / "applied"
    link = LocalLink(tmp_path / "wd", here)
    pid = await link.arm(3600.0, "run-1")
    await link.hold(op(1, log))
    assert await link.claim(1) == "ours"
    await link.hold(op(2, log))
    report = await link.disarm(10.0)
    assert report["disarmed"] and not report["running"] and report["done"] == []
    assert report["pending"] == [2]
    assert await asyncio.to_thread(wait_for_exit, pid, 0.0)
    assert applied(log) == []
    await link.remove()
    assert not (tmp_path / "wd").exists()


async def test_it_refuses_a_directory_that_exists(tmp_path: Path) -> None:
    (tmp_path / "wd").mkdir()
    with pytest.raises(FileExistsError):
        await LocalLink(tmp_path / "wd", here).arm(1.0, "run-1")


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 8),
    early=st.sets(st.integers(1, 8)),
    late=st.lists(st.integers(1, 8), unique=True),
)
def test_each_undo_is_applied_at_most_once_however_claims_and_firing_interleave(
    tmp_path_factory: pytest.TempPathFactory, n: int, early: set[int], late: list[int]
) -> None:
    d = tmp_path_factory.mktemp("wd") / "d"
    log = d.parent / "applied"
    agent.prepare(str(d), {"run_id": "r", "lease": 0.0, "final": []})
    for i in range(1, n + 1):
        agent.hold(str(d), op(i, log))
    mine = [i for i in early if i <= n and agent.claim(str(d), i) == agent.CLAIMED]
    firing = threading.Thread(target=agent.fire, args=(str(d),))
    firing.start()
    mine += [i for i in late if i <= n and agent.claim(str(d), i) == agent.CLAIMED]  # racing it
    firing.join()
    for i in mine:  # the controller applies what it claimed
        ok, _ = agent.apply(op(i, log))
        assert ok
    assert applied(log) == list(range(1, n + 1))  # every undo once: none twice, none lost
    done = {int(p.stem) for p in (d / "done").iterdir()}
    assert done.isdisjoint(mine) and done | set(mine) == set(range(1, n + 1))


class LocalExec:
    """A node access's exec, run on this machine (the ExecLink speaks through it)."""

    async def exec(
        self,
        node: str,
        argv: Sequence[str],
        *,
        host: bool = False,
        stdin: bytes | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError as exc:  # as a remote shell says it
            return ExecResult(tuple(argv), 127, "", f"{argv[0]}: {exc.strerror}")
        out, err = await asyncio.wait_for(proc.communicate(stdin or b""), timeout)
        return ExecResult(tuple(argv), proc.returncode or 0, out.decode(), err.decode())

    async def read_file(self, node: str, path: str, *, host: bool = False) -> str:
        return Path(path).read_text()

    async def write_file(self, node: str, path: str, data: str, *, host: bool = False) -> None:
        Path(path).write_text(data)


async def test_through_a_node_access_exec_the_same_protocol_holds(tmp_path: Path) -> None:
    log = tmp_path / "applied"
    link = ExecLink(LocalExec(), "node-1", str(tmp_path / "node" / "wd"), here, python=sys.executable)
    pid = await link.arm(5.0, "run-1")  # long enough for the holds and the claim on a busy machine
    assert (tmp_path / "node" / "wd" / "agent.py").read_text() == Path(agent.__file__).read_text()
    assert await link.exists()
    await link.hold(op(1, log))
    await link.hold(op(2, log))
    assert await link.claim(1) == "ours"
    assert await asyncio.to_thread(wait_for_exit, pid, 30.0)  # not renewed: it fires
    assert applied(log) == [2]
    assert await link.claim(2) == "watchdog"
    assert (await link.result(2, 5.0) or {}).get("ok") is True
    report = await link.disarm(1.0)
    assert not report["disarmed"] and report["state"] == "fired"
    await link.remove()
    assert not (tmp_path / "node").exists()


async def test_no_python_on_the_node_means_no_watchdog_said_plainly(tmp_path: Path) -> None:
    link = ExecLink(LocalExec(), "node-1", str(tmp_path / "wd"), here, python="/nonexistent/python3")
    with pytest.raises(
        WatchdogUnavailable, match=r"node-1: no watchdog: it needs /nonexistent/python3 ≥ 3.8"
    ):
        await link.arm(1.0, "run-1")
