"""A test double backend: an in-memory cluster and nodes, recording every call.

It lives in tests/ on purpose: it simulates nothing of the kernel and exists only so the engine can
be tested without root. Real behaviour is tested against the lab (tests/lab, marked ``root``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import attrs

from connreset.backends.base import DeploymentSpec, ExecResult, PodStatus, Rule
from connreset.sysctl import is_host_global


class FakeNode:
    def __init__(self, name: str, backend: FakeBackend) -> None:
        self.name = name
        self._b = backend
        self.sysctls: dict[str, str] = {"net.netfilter.nf_conntrack_tcp_be_liberal": "0"}
        self.rules: list[Rule] = []
        self.count = 0
        self.stats: dict[str, int] = {"drop": 0, "invalid": 0}
        self.dropping = 0

    def _table(self, key: str) -> dict[str, str]:
        return self._b.host_sysctls if is_host_global(key) else self.sysctls

    async def exec(self, argv: Sequence[str], *, timeout: float | None = None) -> ExecResult:
        self._b.calls.append(("exec", self.name, tuple(argv)))
        return ExecResult(tuple(argv), 0, "", "")

    async def read_sysctl(self, key: str) -> str:
        self._b.calls.append(("read_sysctl", self.name, key))
        return self._table(key)[key]

    async def write_sysctl(self, key: str, value: str) -> None:
        self._b.calls.append(("write_sysctl", self.name, key, value))
        if key in self._b.fail_writes:
            raise self._b.fail_writes[key]
        self._table(key)[key] = value

    async def add_rule(self, rule: Rule) -> None:
        self._b.calls.append(("add_rule", self.name, rule))
        self.rules.insert(0, rule)

    async def remove_rule(self, rule: Rule) -> None:
        self._b.calls.append(("remove_rule", self.name, rule))
        self.rules.remove(rule)

    async def has_rule(self, rule: Rule) -> bool:
        return rule in self.rules

    async def conntrack_count(self) -> int:
        return self.count

    async def conntrack_stats(self) -> Mapping[str, int]:
        self.stats["drop"] += self.dropping  # a "kernel" that keeps dropping new flows
        return dict(self.stats)

    async def kernel(self) -> str:
        return "fake"


@attrs.define
class FakeCluster:
    backend: Any
    deployments: dict[str, DeploymentSpec] = attrs.field(factory=dict)

    async def deploy(self, spec: DeploymentSpec) -> None:
        self.backend.calls.append(("deploy", spec.name))
        self.deployments[spec.name] = spec

    async def scale(self, deployment: str, replicas: int) -> None:
        self.backend.calls.append(("scale", deployment, replicas))
        self.deployments[deployment] = attrs.evolve(self.deployments[deployment], replicas=replicas)

    async def pods(self, deployment: str | None = None) -> list[PodStatus]:
        specs = [s for n, s in self.deployments.items() if deployment in (None, n)]
        return [
            PodStatus(f"{s.name}-{i}", s.name, "node-1", "198.18.0.2", "Running", 0)
            for s in specs
            for i in range(s.replicas)
        ]

    async def logs(self, pod: str) -> list[str]:
        return list(self.backend.logs.get(pod, []))

    async def delete(self, deployment: str) -> None:
        self.backend.calls.append(("delete", deployment))
        self.deployments.pop(deployment, None)


class FakeBackend:
    """In-memory backend; ``calls`` records every operation in order."""

    name = "fake"
    capabilities = frozenset({"cluster", "logs", "sysctl", "iptables", "conntrack", "exec"})

    def __init__(
        self, nodes: int = 2, capabilities: frozenset[str] | None = None, state: str | None = None
    ) -> None:
        if capabilities is not None:
            self.capabilities = capabilities
        self.calls: list[tuple[Any, ...]] = []
        self.host_sysctls: dict[str, str] = _Persistent(
            state,
            {"net.netfilter.nf_conntrack_max": "262144", "net.netfilter.nf_conntrack_buckets": "262144"},
        )
        self._nodes = [FakeNode(f"node-{i + 1}", self) for i in range(nodes)]
        self._cluster = FakeCluster(self)
        self.logs: dict[str, list[str]] = {}
        self.fail_writes: dict[str, Exception] = {}
        self.opened = self.closed = False

    @property
    def cluster(self) -> FakeCluster:
        return self._cluster

    def nodes(self) -> Sequence[FakeNode]:
        return self._nodes

    def node_names(self) -> Sequence[str]:
        return [n.name for n in self._nodes]

    def sysctl_scope(self, key: str) -> Literal["node", "host"]:
        return "host" if is_host_global(key) else "node"

    async def preview_sysctl(self, node: str, key: str) -> str | None:
        return await self._nodes[0].read_sysctl(key)

    async def __aenter__(self) -> FakeBackend:
        self.calls.append(("open",))
        self.opened = True
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.calls.append(("close",))
        self.closed = True


class _Persistent(dict[str, str]):
    """The "host" sysctls, kept in a JSON file when ``path`` is given, so that a second process
    (``connreset restore``) sees what a killed run left."""

    def __init__(self, path: str | None, defaults: dict[str, str]) -> None:
        self._path = path
        super().__init__(json.loads(Path(path).read_text()) if path and Path(path).exists() else defaults)
        self._save()

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key, value)
        self._save()

    def _save(self) -> None:
        if self._path:
            Path(self._path).write_text(json.dumps(dict(self)))


def factory(nodes: str = "2", state: str | None = None) -> FakeBackend:
    """For ``--backend tests.support:factory`` (options arrive as strings)."""
    return FakeBackend(int(nodes), state=state)
