"""The kernel verbs, written once on top of a node's exec and file reads.

Every node access (the lab, SSH, ``docker exec``, a debug pod) only has to run an argv and read
and write a file on a named node; :class:`NodeKernel` turns that into sysctls, iptables rules,
conntrack counters, the kernel's table-full lines and the kernel version. A node access may
return a subclass with faster paths of its own (the lab does, for the kernel log).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Protocol

import attrs

from connreset.errors import BackendError
from connreset.kernel import conntrack, sysctl


@attrs.frozen
class ExecResult:
    """What an argv run on a node returned."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@attrs.frozen
class Rule:
    """One iptables rule as kube-proxy writes it: table, chain and the match/target argv."""

    table: str
    chain: str
    args: tuple[str, ...]

    def spec(self) -> str:
        return f"-t {self.table} -A {self.chain} {' '.join(self.args)}"


class NodeIO(Protocol):
    """The three things a node access does on a named node.

    ``host=True`` means the kernel's initial network namespace (where the machine-wide sysctls are
    writable) rather than the node's own; for a node that is a whole machine they are the same.
    """

    async def exec(
        self,
        node: str,
        argv: Sequence[str],
        *,
        host: bool = False,
        stdin: bytes | None = None,
        timeout: float | None = None,
    ) -> ExecResult: ...

    async def read_file(self, node: str, path: str, *, host: bool = False) -> str: ...

    async def write_file(self, node: str, path: str, data: str, *, host: bool = False) -> None: ...


_NETNS_LINK = re.compile(r"net:\[(\d+)\]")
OSRELEASE = "/proc/sys/kernel/osrelease"


class NodeKernel:
    """One node's kernel, through its node access."""

    def __init__(self, io: NodeIO, name: str) -> None:
        self.io = io
        self.name = name
        self._netns: int | None = None

    def __repr__(self) -> str:
        return f"<NodeKernel {self.name}>"

    async def exec(self, argv: Sequence[str], *, timeout: float | None = None) -> ExecResult:
        """Run argv in the node's network namespace."""
        return await self.io.exec(self.name, argv, timeout=timeout)

    async def _ok(self, argv: Sequence[str]) -> str:
        result = await self.io.exec(self.name, argv)
        if not result.ok:
            raise BackendError(
                f"{self.name}: `{' '.join(argv)}` failed ({result.returncode}): {result.stderr.strip()[:300]}"
            )
        return result.stdout

    # -- sysctls ----------------------------------------------------------------------------------
    async def read_sysctl(self, key: str) -> str:
        return (await self.io.read_file(self.name, sysctl.proc_path(key))).strip()

    async def write_sysctl(self, key: str, value: str) -> None:
        """Validate (the key's range), then write; machine-wide keys are written in the kernel's
        initial namespace."""
        key, value = sysctl.check(key, value)
        await self.io.write_file(self.name, sysctl.proc_path(key), value, host=sysctl.is_host_global(key))

    async def restore_sysctl(self, key: str, value: str) -> None:
        """Write back a value read from this kernel before (an undo): a known key and a whole
        number, whatever connreset itself would write (see :func:`sysctl.check_original`)."""
        key, value = sysctl.check_original(key, value)
        await self.io.write_file(self.name, sysctl.proc_path(key), value, host=sysctl.is_host_global(key))

    # -- iptables ---------------------------------------------------------------------------------
    async def add_rule(self, rule: Rule) -> None:
        """Insert the rule first in its chain, where kube-proxy writes the INVALID drop."""
        await self._ok(["iptables", "-w", "5", "-t", rule.table, "-I", rule.chain, "1", *rule.args])

    async def remove_rule(self, rule: Rule) -> None:
        await self._ok(["iptables", "-w", "5", "-t", rule.table, "-D", rule.chain, *rule.args])

    async def has_rule(self, rule: Rule) -> bool:
        result = await self.io.exec(
            self.name, ["iptables", "-w", "5", "-t", rule.table, "-C", rule.chain, *rule.args]
        )
        return result.ok

    # -- conntrack --------------------------------------------------------------------------------
    async def conntrack_count(self) -> int:
        return conntrack.parse_stat(await self.io.read_file(self.name, conntrack.STAT_PATH))["entries"]

    async def conntrack_stats(self) -> Mapping[str, int]:
        """``conntrack -S`` summed over CPUs, plus ``entries`` (the count)."""
        return conntrack.parse_stat(await self.io.read_file(self.name, conntrack.STAT_PATH))

    async def flush_conntrack(self) -> None:
        """Forget every tracked connection (``conntrack -F``): a clean table for the next trial."""
        await self._ok(["conntrack", "-F"])

    async def netns_inode(self) -> int:
        """The inode of the node's network namespace, as the kernel's log lines name it."""
        if self._netns is None:
            link = await self._ok(["readlink", "/proc/self/ns/net"])
            match = _NETNS_LINK.search(link)
            if match is None:
                raise BackendError(f"{self.name}: cannot read its network namespace: {link.strip()!r}")
            self._netns = int(match.group(1))
        return self._netns

    async def table_full_lines(self) -> list[str]:
        """The kernel's ``nf_conntrack: table full`` lines about this node, from ``dmesg``.

        Kernels that name the namespace (``table full in netns N``) are filtered to this node's.
        """
        out = await self._ok(["dmesg", "--kernel", "--notime"])
        return conntrack.table_full_lines(out.splitlines(), await self.netns_inode())

    async def table_full_count(self) -> int:
        """How many table-full lines the kernel has logged about this node so far."""
        return len(await self.table_full_lines())

    # -- the kernel itself ------------------------------------------------------------------------
    async def kernel(self) -> str:
        """The kernel's release, as ``uname -r`` prints it."""
        return (await self.io.read_file(self.name, OSRELEASE)).strip()
