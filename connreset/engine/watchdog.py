"""The controller's side of the node watchdogs: arm them, hand them undos, renew, claim, disarm.

Where a node access offers watchdog links (the lab, SSH, docker), a run arms one watchdog per
link with a lease, and renews it every quarter of the lease. Each node-side undo (a sysctl, a
rule) is handed to its node's watchdog right after the journal has it, before the change. To
undo, the controller first *claims* the undo on the node; if the watchdog has it (the lease ran
out), the controller only reads back what the watchdog did. So each undo is applied at most
once, by the run, by ``connreset restore``, or by the watchdog, and always verified.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from connreset._support.logs import get_logger
from connreset.engine.undo import UndoRecord
from connreset.errors import BackendError, ConnresetError
from connreset.kernel import sysctl
from connreset.testbed import Testbed
from connreset.watchdog import WatchdogLink, agent
from connreset.watchdog.link import Claim

log = get_logger("connreset.watchdog")

LEASE = 60.0
IPTABLES = ("iptables", "-w", "5")
DISARM_WAIT = 10.0
FIRING_WAIT = 120.0  # a firing watchdog's undos, then its final actions (the lab's teardown)


def op_for(record: UndoRecord, enter: Sequence[str] | None) -> dict[str, Any] | None:
    """The watchdog's form of a node-side undo: argvs to apply it and to read it back, run where
    it belongs (``enter``). None for the cluster's own undos, or out of the watchdog's reach."""
    if enter is None:
        return None
    base: dict[str, Any] = {"id": record.id, "what": f"{record.node}: {record.describe()}"}
    if record.action == "sysctl" and record.value is not None:
        path = sysctl.proc_path(record.target)
        return {
            **base,
            "apply": {"argv": [*enter, "tee", "--", path], "stdin": record.value},
            "verify": {"argv": [*enter, "cat", "--", path], "stdout": record.value},
        }
    if record.action == "rule" and record.rule is not None:
        r = record.rule
        return {
            **base,
            "apply": {"argv": [*enter, *IPTABLES, "-t", r.table, "-D", r.chain, *r.args]},
            "verify": {"argv": [*enter, *IPTABLES, "-t", r.table, "-C", r.chain, *r.args], "fails": True},
        }
    return None


def links_of(testbed: Testbed, run_id: str) -> Mapping[str, WatchdogLink]:
    """node → its watchdog link (none where the node access runs no watchdogs)."""
    return testbed.access.watchdog_links(run_id, list(testbed.node_names() or ()))


class Keeper:
    """A run's watchdogs: one per link, each renewed until the run disarms it."""

    def __init__(self, testbed: Testbed, links: Mapping[str, WatchdogLink], lease: float) -> None:
        self.testbed = testbed
        self.links = dict(links)
        self.lease = lease
        self.armed: dict[str, int] = {}  # link directory → pid
        self.unavailable: dict[str, str] = {}  # place → why
        self._renewer: asyncio.Task[None] | None = None
        self._stop_thread = threading.Event()
        self._renewed: set[str] = set()  # directories `restore` renews: watchdogs still armed

    def _unique(self) -> list[WatchdogLink]:
        seen: dict[str, WatchdogLink] = {}
        for link in self.links.values():
            seen.setdefault(link.directory, link)
        return list(seen.values())

    @classmethod
    async def start(cls, testbed: Testbed, run_id: str, lease: float) -> Keeper:
        """Arm a watchdog per link; a place where none can run is noted, and the run goes on."""
        keeper = cls(testbed, links_of(testbed, run_id), lease)
        for link in keeper._unique():
            try:
                keeper.armed[link.directory] = await link.arm(lease, run_id)
            except (ConnresetError, OSError) as exc:
                keeper.unavailable[link.place] = str(exc)
                keeper.links = {n: ln for n, ln in keeper.links.items() if ln.directory != link.directory}
        if keeper.armed:
            keeper._renewer = asyncio.create_task(keeper._renew_forever(), name="connreset-watchdog-lease")
        return keeper

    @classmethod
    async def attach(cls, testbed: Testbed, run_id: str) -> Keeper:
        """The watchdogs a run left, for ``connreset restore`` (those whose directory exists)."""
        keeper = cls(testbed, links_of(testbed, run_id), 0.0)
        present = {link.directory for link in keeper._unique() if await _exists(link)}
        keeper.links = {n: ln for n, ln in keeper.links.items() if ln.directory in present}
        return keeper

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 4)
            for link in self._unique():
                try:
                    await link.renew()
                except (ConnresetError, OSError) as exc:  # missed renewals end in the watchdog firing
                    log.warning("could not renew a watchdog's lease", place=link.place, error=str(exc))

    def _link(self, record: UndoRecord) -> WatchdogLink | None:
        return self.links.get(record.node) if record.action in ("sysctl", "rule") else None

    async def hold(self, record: UndoRecord) -> bool:
        """Hand a node-side undo to its node's watchdog; False when no watchdog holds it."""
        link = self._link(record)
        if link is None:
            return False
        op = op_for(record, link.enter(record.node, sysctl.is_host_global(record.target)))
        if op is None:
            return False
        try:
            await link.hold(op)
        except (ConnresetError, OSError) as exc:
            raise BackendError(
                f"could not hand the undo to {link.place}'s watchdog ({exc}); the change was not made"
            ) from exc
        return True

    async def claim(self, record: UndoRecord) -> Claim:
        """Take the undo from the watchdog before applying it: ``watchdog`` if it has it already."""
        link = self._link(record)
        if link is None:
            return "unheld"
        return await link.claim(record.id)

    async def settled(self, record: UndoRecord) -> tuple[bool, str] | None:
        """How the watchdog applied the undo, if it did (not waiting); None if it has not."""
        link = self._link(record)
        if link is None:
            return None
        found = await link.result(record.id, 0.0)
        if found is None:
            return None
        return bool(found.get("ok")), f"put back by {link.place}'s watchdog: {found.get('detail', '')}"

    def renewed(self, record: UndoRecord) -> bool:
        """The undo's watchdog is armed and ``restore`` renews it (so it will not fire meanwhile)."""
        link = self._link(record)
        return link is not None and link.directory in self._renewed

    def finishes_cluster(self, record: UndoRecord) -> bool:
        """A fired watchdog's final actions removed the cluster's objects (the lab's ``lab down``)."""
        return any(getattr(link, "finishes_cluster", lambda: False)() for link in self._unique())

    async def _state(self, link: WatchdogLink) -> tuple[str, float] | None:
        try:
            return await link.status()
        except (ConnresetError, OSError, ValueError, KeyError):
            return None

    async def wait_firing(self, wait: float = FIRING_WAIT) -> None:
        """Let a watchdog that is firing finish (its undos, its final actions) before ``restore``
        acts: the two must not work on the same nodes at once."""
        for link in self._unique():
            found = await self._state(link)
            if found is not None and found[0] == "firing":
                await link.disarm(wait)  # it has fired: this only waits for it to exit

    async def renew_for_restore(self) -> None:
        """``connreset restore``: keep each armed watchdog armed, renewed from now until
        :meth:`close`; if restore dies, renewal stops and the watchdog finishes by itself."""
        leases = []
        for link in self._unique():
            found = await self._state(link)
            if found is None or found[0] != "armed":
                continue
            hold_for = getattr(link, "hold_for", None)  # a lab opened meanwhile leaves it armed
            if hold_for is not None:
                hold_for(os.getpid())
            await link.renew()
            again = await self._state(link)
            if again is not None and again[0] in ("firing", "fired"):  # its lease ran out just before
                await link.disarm(FIRING_WAIT)  # it has fired: this waits for it to finish
                continue
            self._renewed.add(link.directory)
            leases.append(found[1])
        if leases:
            self.lease = min(leases)
            self._renewer = asyncio.create_task(self._renew_forever(), name="connreset-watchdog-lease")
            # a watchdog on this machine is also renewed from a thread: the lab's own teardown, when
            # restore reopens it, blocks the event loop for as long as it takes
            local = [ln for ln in self._unique() if ln.directory in self._renewed and hasattr(ln, "hold_for")]
            if local:
                self._stop_thread = threading.Event()
                threading.Thread(
                    target=_renew_in_thread,
                    args=([ln.directory for ln in local], self.lease / 4, self._stop_thread),
                    name="connreset-watchdog-lease",
                    daemon=True,
                ).start()

    async def watchdog_result(self, record: UndoRecord, wait: float) -> tuple[bool, str]:
        link = self._link(record)
        assert link is not None
        found = await link.result(record.id, wait)
        if found is None:
            return False, f"{link.place}'s watchdog took it but reported nothing within {wait:g}s"
        return bool(found.get("ok")), f"by {link.place}'s watchdog: {found.get('detail', '')}"

    def stop_renewing(self) -> None:
        """Renew no more: each watchdog restores what it holds once its lease runs out."""
        self._stop_thread.set()
        if self._renewer is not None:
            self._renewer.cancel()
            self._renewer = None

    async def close(self, *, disarm: bool = True, remove: bool = True) -> list[str]:
        """Stop renewing; disarm each watchdog and wait for it to exit; say what any did."""
        self._stop_thread.set()
        if self._renewer is not None:
            renewer, self._renewer = self._renewer, None
            renewer.cancel()
            await asyncio.wait([renewer])  # a cancellation of our own still reaches us
        lines: list[str] = []
        if not disarm:
            return lines
        for link in self._unique():
            try:
                report = await link.disarm(DISARM_WAIT)
                if report.get("running"):
                    lines.append(f"{link.place}: the watchdog did not exit within {DISARM_WAIT:g}s")
                    continue
                if report.get("done"):
                    lines.append(
                        f"{link.place}: the watchdog had fired and applied {len(report['done'])} undo(s)"
                    )
                if remove:
                    await link.remove()
            except (ConnresetError, OSError) as exc:
                lines.append(f"{link.place}: could not disarm the watchdog: {exc}")
        return lines


def _renew_in_thread(directories: list[str], every: float, stop: threading.Event) -> None:
    while not stop.wait(every):
        for d in directories:
            try:
                agent.renew(d)
            except OSError:  # gone: disarmed and removed meanwhile
                continue


async def _exists(link: WatchdogLink) -> bool:
    try:
        return await link.exists()
    except (ConnresetError, OSError):
        return False
