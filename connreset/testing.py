"""Test doubles for your own tests and plugins: an in-memory cluster and an in-memory node access.

These are **test doubles**, not simulations: they keep state in dictionaries and record every
call, so that an engine, a step or a plugin can be tested without root, a cluster or a kernel
(as httpx ships ``MockTransport``). Nothing about conntrack's real behaviour can be learnt from
them; connreset tests that on the real lab.

    from connreset import run
    from connreset.testing import testbed

    tb = testbed(nodes=3)
    result = await run(my_experiment, tb)
    assert tb.access.sysctl("node-1", "nf_conntrack_tcp_be_liberal") == "0"

:class:`MemoryNodeAccess` implements exec and file reads and writes, so the real kernel verbs
(:class:`connreset.kernel.NodeKernel`) run on it: ``/proc/sys`` files, ``iptables -I/-D/-C``,
``/proc/net/stat/nf_conntrack``. With ``state=PATH`` both doubles keep their state in a JSON
file, so that a second process (``connreset restore``) sees what a killed one left.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from connreset.errors import BackendError
from connreset.kernel import conntrack, sysctl
from connreset.kernel.node import ExecResult
from connreset.testbed import (
    NODE_CAPABILITIES,
    BaseClusterBackend,
    BaseNodeAccess,
    Capacity,
    ClusterBackend,
    DeploymentSpec,
    LogSink,
    NodeInfo,
    PodPhase,
    PodStatus,
    Testbed,
    TestbedSpec,
    option,
)
from connreset.testbed.workloads import Opaque

__all__ = ["MemoryCluster", "MemoryNodeAccess", "memory_access", "memory_cluster", "testbed"]

DEFAULTS = {
    "net.netfilter.nf_conntrack_max": "262144",
    "net.netfilter.nf_conntrack_buckets": "262144",
    "net.netfilter.nf_conntrack_tcp_be_liberal": "0",
    "net.netfilter.nf_conntrack_tcp_loose": "1",
    "net.netfilter.nf_conntrack_tcp_ignore_invalid_rst": "0",
    "net.netfilter.nf_conntrack_tcp_timeout_established": "432000",
    "net.netfilter.nf_conntrack_tcp_timeout_time_wait": "120",
    "net.netfilter.nf_conntrack_udp_timeout": "30",
    "net.ipv4.ip_forward": "1",
}
_STAT_COLUMNS = (
    "entries",
    "clashres",
    "found",
    "new",
    "invalid",
    "ignore",
    "delete",
    "delete_list",
    "insert",
    "insert_failed",
    "drop",
    "early_drop",
    "icmp_error",
    "expect_new",
    "expect_create",
    "expect_delete",
    "search_restart",
    "chainlength",
)


def _names(count: int) -> list[str]:
    return [f"node-{i + 1}" for i in range(count)]


class _Store:
    """A dict kept in a JSON file when a path is given (shared across processes)."""

    def __init__(self, path: str | None, initial: dict[str, Any]) -> None:
        self._path = Path(path) if path else None
        self.data: dict[str, Any] = (
            json.loads(self._path.read_text()) if self._path and self._path.exists() else initial
        )
        self.save()

    def save(self) -> None:
        if self._path is not None:
            self._path.write_text(json.dumps(self.data))


@attrs.define
class _Counters:
    count: int = 0
    stats: dict[str, int] = attrs.field(factory=dict)
    dropping: int = 0  # added to ``drop`` at every read: a "kernel" that keeps dropping


def _max_pods(_: object, attribute: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and value < 0:
        raise ValueError(f"max_pods must be >= 0, got {value}")


@attrs.frozen
class MemoryAccessOptions:
    """The test double node access's options."""

    nodes: int = option(2, "how many nodes, when opened without a cluster's inventory")
    shares_kernel: bool = option(True, "machine-wide sysctls are one value for all nodes (like the lab)")
    state: str = option("", "a JSON file to keep the values and rules in, across processes")
    hang: str = option("", "operations that never answer (a dead link), comma-separated")


@attrs.frozen
class MemoryClusterOptions:
    """The test double cluster's options."""

    nodes: int = option(2, "how many nodes")
    state: str = option("", "a JSON file to keep the Deployments in, across processes")
    max_pods: int | None = option(None, "its capacity (none: no limit)", validator=_max_pods)


class MemoryNodeAccess(BaseNodeAccess):
    """A test double node access: per-node ``/proc/sys`` values, iptables rules and counters.

    Args:
        nodes: used when opened without a cluster's inventory (e.g. by a test that builds it alone).
        shares_kernel: like the lab and kind: machine-wide sysctls are one value for all nodes.
        state: a JSON file to keep the values and rules in, across processes.

    ``calls`` records every operation; ``fail`` maps an operation (``write_file``, ``exec``...)
    to an exception to raise; ``hang`` holds operations that never answer (a dead link).
    """

    name = "memory"
    capabilities = NODE_CAPABILITIES
    Options = MemoryAccessOptions
    options: MemoryAccessOptions

    def __init__(self, nodes: int | str = 2, **options: object) -> None:
        super().__init__(nodes=nodes, **options)
        o = self.options
        self.shares_kernel = o.shares_kernel
        self._names = _names(o.nodes)
        self._store = _Store(o.state or None, {"sysctl": {}, "rules": {}})
        hang = o.hang
        self.calls: list[tuple[Any, ...]] = []
        self.counters: dict[str, _Counters] = {}
        self.fail: dict[str, BaseException] = {}
        self.hang: set[str] = {h for h in hang.split(",") if h}
        self.opened = self.closed = False
        self._ensure(self._names)

    def _ensure(self, names: Sequence[str]) -> None:
        sysctls, rules = self._store.data["sysctl"], self._store.data["rules"]
        for name in [*names, "host"]:
            sysctls.setdefault(name, dict(DEFAULTS))
            rules.setdefault(name, [])
            self.counters.setdefault(name, _Counters())
        self._store.save()

    def _table(self, node: str, key: str) -> dict[str, str]:
        where = "host" if self.shares_kernel and sysctl.is_host_global(key) else node
        if node not in self._store.data["sysctl"]:
            raise BackendError(f"memory node access has no node {node!r}")
        table: dict[str, str] = self._store.data["sysctl"][where]
        return table

    def sysctl(self, node: str, key: str) -> str:
        """The value a node's kernel holds now (for assertions)."""
        full = sysctl.full_name(key)
        return self._table(node, full)[full]

    def rules(self, node: str) -> list[list[str]]:
        """The rules on a node now, as ``[table, chain, *args]``."""
        rules: list[list[str]] = self._store.data["rules"][node]
        return rules

    async def _enter(self, op: str, *args: object) -> None:
        self.calls.append((op, *args))
        await asyncio.sleep(0)  # an answer takes a turn of the event loop, as real I/O does
        if op in self.hang:
            await asyncio.Event().wait()
        if op in self.fail:
            raise self.fail[op]

    async def open(self, cluster: ClusterBackend, nodes: Sequence[NodeInfo]) -> None:
        self.calls.append(("open",))
        self._names = [n.name for n in nodes]
        self._ensure(self._names)
        self.opened = True

    async def close(self) -> None:
        await self._enter("close")
        self.closed = True

    async def exec(
        self,
        node: str,
        argv: Sequence[str],
        *,
        host: bool = False,
        stdin: bytes | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        await self._enter("exec", node, tuple(argv))
        args = list(argv)
        if args[:1] == ["iptables"]:
            return self._iptables(node, args[1:])
        if args == ["readlink", "/proc/self/ns/net"]:
            return ExecResult(tuple(argv), 0, f"net:[{4026530000 + self._names.index(node)}]\n", "")
        if args[:1] == ["dmesg"]:
            return ExecResult(tuple(argv), 0, "", "")
        if args == ["conntrack", "-F"]:
            self.counters[node].count = 0
        return ExecResult(tuple(argv), 0, "", "")

    def _iptables(self, node: str, args: list[str]) -> ExecResult:
        if args[:2] == ["-w", "5"]:
            args = args[2:]
        table = "filter"
        if args[:1] == ["-t"]:
            table, args = args[1], args[2:]
        op, chain, rest = args[0], args[1], args[2:]
        if op == "-I" and rest[:1] == ["1"]:
            rest = rest[1:]
        rule, rules = [table, chain, *rest], self.rules(node)
        argv = ("iptables", *args)
        if op in ("-I", "-A"):
            rules.insert(0, rule) if op == "-I" else rules.append(rule)
        elif op == "-D":
            if rule not in rules:
                return ExecResult(
                    argv, 1, "", "iptables: Bad rule (does a matching rule exist in that chain?)."
                )
            rules.remove(rule)
        elif op == "-C":
            return ExecResult(argv, 0 if rule in rules else 1, "", "")
        self._store.save()
        return ExecResult(argv, 0, "", "")

    async def read_file(self, node: str, path: str, *, host: bool = False) -> str:
        await self._enter("read_file", node, path)
        if path == conntrack.STAT_PATH:
            c = self.counters[node]
            c.stats["drop"] = c.stats.get("drop", 0) + c.dropping
            row = " ".join(f"{c.count if k == 'entries' else c.stats.get(k, 0):08x}" for k in _STAT_COLUMNS)
            return " ".join(_STAT_COLUMNS) + "\n" + row + "\n"
        if path == "/proc/sys/kernel/osrelease":
            return "memory\n"
        key = path.removeprefix("/proc/sys/").replace("/", ".")
        try:
            return self._table(node, key)[key] + "\n"
        except KeyError:
            raise BackendError(f"{node}: cannot read {path}: no such file") from None

    async def write_file(self, node: str, path: str, data: str, *, host: bool = False) -> None:
        await self._enter("write_file", node, path, data, host)
        key = path.removeprefix("/proc/sys/").replace("/", ".")
        self._table(node, key)[key] = data.strip()
        self._store.save()

    async def preview_file(self, node: str, path: str) -> str | None:
        key = path.removeprefix("/proc/sys/").replace("/", ".")
        return self._table(node if node in self._names else self._names[0], key).get(key)


class MemoryCluster(BaseClusterBackend):
    """A test double cluster backend: Deployments in a dict, every pod Running unless told.

    ``phase[deployment]`` sets the phase its pods report, ``missing[deployment]`` how many of its
    replicas have no pod; :meth:`log` writes a pod log line into the stream. With ``state=PATH``
    the Deployments are kept in a JSON file. ``max_pods`` (default: no limit) is its capacity,
    as a real backend's would be: a plan asking for more pods is refused before it runs.
    """

    name = "memory"
    capabilities = frozenset({"cluster", "logs"})
    default_node_access = "connreset.testing:memory_access"
    Options = MemoryClusterOptions
    options: MemoryClusterOptions

    def __init__(self, nodes: int | str = 2, **options: object) -> None:
        super().__init__(nodes=nodes, **options)
        self._names = _names(self.options.nodes)
        self.max_pods = self.options.max_pods
        self._store = _Store(self.options.state or None, {"deployments": {}})
        self.calls: list[tuple[Any, ...]] = []
        self.phase: dict[str, PodPhase] = {}
        self.restarts: dict[str, int] = {}
        self.missing: dict[str, int] = {}  # pods not (yet) created, e.g. a quota stops them
        self._sink: LogSink | None = None
        self.opened = self.closed = False

    def node_names(self) -> Sequence[str]:
        return list(self._names)

    def capacity(self) -> Capacity | None:
        if self.max_pods is None:
            return None
        return Capacity(self.max_pods, nodes=max(len(self._names), 1), why="its max_pods option")

    async def open(self) -> None:
        self.calls.append(("open",))
        self.opened = True

    async def close(self) -> None:
        self.calls.append(("close",))
        self.closed = True

    async def inventory(self) -> Sequence[NodeInfo]:
        return [NodeInfo(n, f"198.19.0.{i + 1}") for i, n in enumerate(self._names)]

    async def begin_run(self, run_id: str) -> None:
        self.calls.append(("begin_run", run_id))

    async def end_run(self, run_id: str) -> Sequence[str]:
        self.calls.append(("end_run", run_id))
        return []

    @property
    def deployments(self) -> dict[str, dict[str, Any]]:
        deployments: dict[str, dict[str, Any]] = self._store.data["deployments"]
        return deployments

    async def deploy(self, spec: DeploymentSpec) -> None:
        self.calls.append(("deploy", spec.name))
        if spec.name in self.deployments:
            raise BackendError(f"deployment {spec.name} already exists")
        self.deployments[spec.name] = {"replicas": spec.replicas, "labels": dict(spec.labels), "spec": spec}
        self._save()

    async def scale(self, deployment: str, replicas: int) -> None:
        self.calls.append(("scale", deployment, replicas))
        if deployment not in self.deployments:
            raise BackendError(f"no deployment {deployment!r}")
        self.deployments[deployment]["replicas"] = replicas
        self._save()

    async def get(self, deployment: str) -> DeploymentSpec | None:
        d = self.deployments.get(deployment)
        if d is None:
            return None
        spec = d.get("spec")
        if isinstance(spec, DeploymentSpec):
            return attrs.evolve(spec, replicas=d["replicas"], labels=d["labels"])
        return DeploymentSpec(deployment, Opaque(), d["replicas"], labels=d["labels"])

    async def pods(self, deployment: str | None = None) -> list[PodStatus]:
        self.calls.append(("pods", deployment))
        return [
            PodStatus(
                f"{name}-{i}",
                name,
                self._names[0],
                "198.18.0.2",
                self.phase.get(name, "Running"),
                self.restarts.get(name, 0),
            )
            for name, d in self.deployments.items()
            if deployment in (None, name)
            for i in range(max(d["replicas"] - self.missing.get(name, 0), 0))
        ]

    async def delete(self, deployment: str) -> None:
        self.calls.append(("delete", deployment))
        self.deployments.pop(deployment, None)
        self._save()

    def stream_logs(self, sink: LogSink | None) -> None:
        self._sink = sink

    def plan_deploy(self, spec: DeploymentSpec) -> list[str]:
        return []

    def log(self, pod: str, line: str) -> None:
        """A line the pod writes (its Deployment is the name up to the last ``-``)."""
        if self._sink is not None:
            self._sink(pod.rsplit("-", 1)[0], pod, line)

    def _save(self) -> None:
        if self._store._path is not None:
            plain = {
                n: {"replicas": d["replicas"], "labels": d["labels"]} for n, d in self.deployments.items()
            }
            self._store._path.write_text(json.dumps({"deployments": plain}))


#: ``--cluster connreset.testing:memory_cluster`` (options arrive as strings)
memory_cluster = MemoryCluster
#: ``--node-access connreset.testing:memory_access``
memory_access = MemoryNodeAccess


class MemoryTestbed(Testbed):
    """A testbed of the two test doubles, typed so that tests reach them directly."""

    cluster: MemoryCluster
    access: MemoryNodeAccess


def testbed(
    nodes: int = 2,
    *,
    shares_kernel: bool = True,
    state: str | None = None,
    capabilities: frozenset[str] | None = None,
) -> MemoryTestbed:
    """A testbed of the test doubles (not opened yet). ``capabilities`` narrows what it can do."""
    cluster = MemoryCluster(nodes, state=f"{state}.cluster" if state else "")
    access = MemoryNodeAccess(nodes, shares_kernel=shares_kernel, state=state or "")
    if capabilities is not None:
        cluster.capabilities = frozenset(capabilities & cluster.capabilities)
        access.capabilities = frozenset(capabilities - cluster.capabilities)
    options: Mapping[str, str] = {"nodes": str(nodes)}
    node_options = {**options, "shares_kernel": str(shares_kernel), **({"state": state} if state else {})}
    cluster_options = {**options, **({"state": f"{state}.cluster"} if state else {})}
    spec = TestbedSpec(
        "connreset.testing:memory_cluster", "connreset.testing:memory_access", cluster_options, node_options
    )
    return MemoryTestbed(cluster, access, spec)


testbed.__test__ = False  # type: ignore[attr-defined]  # a factory, not a pytest test
