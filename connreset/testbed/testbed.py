"""A testbed: one cluster backend plus one node access, opened and closed together."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Literal

import attrs

from connreset._support.redact import REDACTED, redact
from connreset.errors import BackendError, ValidationError
from connreset.kernel import sysctl
from connreset.kernel.node import NodeKernel
from connreset.testbed import options as opts
from connreset.testbed.access import NodeAccess
from connreset.testbed.cluster import Capacity, ClusterBackend, NodeInfo


def _options(value: Mapping[str, object]) -> Mapping[str, str]:
    return {str(k): str(v) for k, v in value.items()}


def _hide(values: Mapping[str, str], secret: frozenset[str] | None) -> dict[str, object]:
    if secret is None:
        return redact(values)
    return {k: (REDACTED if k in secret else v) for k, v in values.items()}


@attrs.frozen
class TestbedSpec:
    """How to build a testbed again: the entry-point names and the options given to each.

    The journal keeps it (secrets redacted), so ``connreset restore`` reopens the same testbed.
    """

    __test__ = False  # not a pytest test class

    cluster: str = attrs.field(default="lab", validator=attrs.validators.instance_of(str))
    node_access: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(str))
    )
    cluster_options: Mapping[str, str] = attrs.field(factory=dict, converter=_options)
    node_options: Mapping[str, str] = attrs.field(factory=dict, converter=_options)

    def to_json(
        self, secret: frozenset[str] | None = None, node_secret: frozenset[str] | None = None
    ) -> dict[str, Any]:
        """For the journal: the options declared secret (``secret`` for the cluster backend's,
        ``node_secret`` for the node access's) are ``<redacted>``; without declarations, names
        that look secret are."""
        return {
            "cluster": self.cluster,
            "node_access": self.node_access,
            "cluster_options": _hide(self.cluster_options, secret),
            "node_options": _hide(self.node_options, node_secret),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TestbedSpec:
        return cls(
            data.get("cluster") or "lab",
            data.get("node_access"),
            data.get("cluster_options") or {},
            data.get("node_options") or {},
        )


class Testbed:
    """A cluster backend and a node access, composed.

    It unions their capabilities, decides for each sysctl whether it is per node or shared by the
    host, and hands steps one :class:`NodeKernel` per node. ``async with testbed:`` opens the
    cluster, then the node access (with the cluster's inventory), and closes them in reverse.
    An open testbed serves any number of runs (:func:`connreset.run_on`).
    """

    __test__ = False

    def __init__(self, cluster: ClusterBackend, access: NodeAccess, spec: TestbedSpec | None = None) -> None:
        self.cluster = cluster
        self.access = access
        self.spec = spec or TestbedSpec(cluster.name, access.name)
        self._inventory: list[NodeInfo] | None = None
        self._kernels: dict[str, NodeKernel] = {}
        access.bind(cluster)

    def __repr__(self) -> str:
        return f"<Testbed {self.name}{' open' if self.is_open else ''}>"

    @property
    def name(self) -> str:
        """``lab``, or ``cluster+access`` when the node access is not the cluster's own."""
        if self.access.name in (self.cluster.default_node_access, self.cluster.name):
            return self.cluster.name
        return f"{self.cluster.name}+{self.access.name}"

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset(self.cluster.capabilities | self.access.capabilities)

    @property
    def withheld(self) -> Mapping[str, str]:
        """Capabilities the node access lacks on this cluster, with why (for validation)."""
        return dict(self.access.withheld)

    @property
    def capacity(self) -> Capacity | None:
        """How many pods the cluster can run, if it says (its ``capacity()``)."""
        found = self.cluster.capacity()
        return found if isinstance(found, Capacity) else None

    def plan_run(self, run_id: str) -> list[str]:
        """Lines for ``--dry-run``: what the cluster and the node access make for a run itself."""
        return [*self.cluster.plan_run(run_id), *self.access.plan_run(run_id)]

    def spec_json(self) -> dict[str, Any]:
        """The spec for the journal, with the options each part declares secret redacted."""
        return self.spec.to_json(_secret(self.cluster.options), _secret(self.access.options))

    @property
    def is_open(self) -> bool:
        return self._inventory is not None

    def node_names(self) -> Sequence[str] | None:
        """The nodes: the inventory once open, else what the cluster knows up front (or None)."""
        if self._inventory is not None:
            return [n.name for n in self._inventory]
        return self.cluster.node_names()

    def sysctl_scope(self, key: str) -> Literal["node", "host"]:
        """``host`` when writing the key on one node changes it for every node of this testbed."""
        return "host" if sysctl.is_host_global(key) and self.access.shares_kernel else "node"

    async def preview_sysctl(self, node: str, key: str) -> str | None:
        """The current value for a dry-run, read without opening anything (None: unknown)."""
        try:
            text = await self.access.preview_file(node, sysctl.proc_path(key))
        except (OSError, BackendError):
            return None
        return text.strip() if text is not None else None

    def nodes(self, names: Sequence[str] | None = None) -> list[NodeKernel]:
        """The kernels of the named nodes (every node by default), in inventory order."""
        if self._inventory is None:
            raise BackendError(f"testbed {self.name} is not open")
        known = [n.name for n in self._inventory]
        if names is None:
            names = known
        missing = [n for n in names if n not in known]
        if missing:
            raise ValidationError(f"unknown node(s) {', '.join(missing)}; have {', '.join(known)}")
        return [self.node(n) for n in names]

    def node(self, name: str) -> NodeKernel:
        kernel = self._kernels.get(name)
        if kernel is None:
            kernel = self._kernels[name] = self.access.kernel(name)
        return kernel

    async def open(self) -> None:
        if self._inventory is not None:
            raise BackendError(f"testbed {self.name} is open already")
        await self.cluster.open()
        try:
            inventory = list(await self.cluster.inventory())
            await self.access.open(self.cluster, inventory)
        except BaseException:
            await self.cluster.close()
            raise
        self._inventory = inventory

    async def close(self) -> None:
        """Close the node access, then the cluster; both are attempted whatever the first does."""
        if self._inventory is None:
            return
        self._inventory = None
        self._kernels.clear()
        try:
            await self.access.close()
        finally:
            await self.cluster.close()

    async def __aenter__(self) -> Testbed:
        await self.open()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def _secret(options: object) -> frozenset[str] | None:
    """The option names declared secret (None: the options are no declared class)."""
    return opts.secret_names(type(options)) if attrs.has(type(options)) else None
