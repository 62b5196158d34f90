"""A lab node: a network namespace with kube-proxy's rules and its own conntrack table."""

from __future__ import annotations

import asyncio
import os
import platform
from collections.abc import Mapping, Sequence

from connreset import sysctl
from connreset.backends.base import ExecResult, Rule
from connreset.errors import BackendError
from connreset.lab import host, plumbing
from connreset.lab.kmsg import KernelLog

#: ``/proc/net/stat/nf_conntrack`` column → the name ``conntrack -S`` prints.
STAT_NAMES = {"chainlength": "chaintoolong", "clashres": "clash_resolve"}


class LabNode:
    """Implements the Node interface for one node namespace.

    The conntrack count and counters are read from ``/proc/PID/net/stat/nf_conntrack`` of a
    ``sleep`` process living in the node's namespace: the same numbers as ``nf_conntrack_count``
    and ``conntrack -S``, without starting a process per sample.
    """

    def __init__(self, name: str, ns: str, kernel_log: KernelLog | None = None) -> None:
        self.name = name
        self.ns = ns
        self._pause: asyncio.subprocess.Process | None = None
        self._kernel_log = kernel_log

    @property
    def ns_inode(self) -> int:
        return os.stat(f"/run/netns/{self.ns}").st_ino

    def kernel_log(self) -> list[str]:
        """The kernel's conntrack lines about this node's namespace since the lab started."""
        if self._kernel_log is None:
            return []
        return list(self._kernel_log.lines.get(self.ns_inode, []))

    async def start(self) -> None:
        self._pause = await asyncio.create_subprocess_exec(
            "nsenter",
            f"--net=/run/netns/{self.ns}",
            "--",
            "sleep",
            "infinity",
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )

    async def stop(self) -> None:
        if self._pause is not None and self._pause.returncode is None:
            self._pause.kill()
            await self._pause.wait()

    async def exec(self, argv: Sequence[str], *, timeout: float | None = None) -> ExecResult:
        code, out, err = await asyncio.wait_for(plumbing.nsexec(self.ns, argv), timeout)
        return ExecResult(tuple(argv), code, out, err)

    async def read_sysctl(self, key: str) -> str:
        if sysctl.is_host_global(key):
            return host.read_global(key)
        return (await plumbing.nsexec_ok(self.ns, ["sysctl", "-n", sysctl.full_name(key)])).strip()

    async def write_sysctl(self, key: str, value: str) -> None:
        if sysctl.is_host_global(key):
            host.write_global(key, value)
            return
        await plumbing.nsexec_ok(self.ns, ["sysctl", "-q", "-w", f"{sysctl.full_name(key)}={value}"])

    async def add_rule(self, rule: Rule) -> None:
        """Insert the rule first in its chain, where kube-proxy writes the INVALID drop."""
        await plumbing.nsexec_ok(self.ns, ["iptables", "-t", rule.table, "-I", rule.chain, "1", *rule.args])

    async def remove_rule(self, rule: Rule) -> None:
        await plumbing.nsexec_ok(self.ns, ["iptables", "-t", rule.table, "-D", rule.chain, *rule.args])

    async def has_rule(self, rule: Rule) -> bool:
        code, _, _ = await plumbing.nsexec(
            self.ns, ["iptables", "-t", rule.table, "-C", rule.chain, *rule.args]
        )
        return code == 0

    def _stat_rows(self) -> tuple[list[str], list[list[int]]]:
        if self._pause is None or self._pause.returncode is not None:
            raise BackendError(f"{self.name} is not running")
        with open(f"/proc/{self._pause.pid}/net/stat/nf_conntrack") as f:
            header, *rows = f.read().split("\n")
        return header.split(), [[int(x, 16) for x in r.split()] for r in rows if r.strip()]

    async def conntrack_count(self) -> int:
        _, rows = self._stat_rows()
        return rows[0][0]

    async def conntrack_stats(self) -> Mapping[str, int]:
        names, rows = self._stat_rows()
        totals = {STAT_NAMES.get(n, n): sum(r[i] for r in rows) for i, n in enumerate(names)}
        totals["entries"] = rows[0][0]
        if self._kernel_log is not None:
            totals["table_full_logged"] = self._kernel_log.counts[self.ns_inode]
        return totals

    async def kernel(self) -> str:
        return platform.release()
