"""kind node containers: found by the label ``io.x-k8s.kind.cluster=NAME``, named as kind names them.

kind names a cluster's node containers ``NAME-control-plane``, ``NAME-worker``, ``NAME-worker2``…,
sets each container's hostname to its name, and registers the Kubernetes node under that hostname:
the node name *is* the container name. Nothing else is mapped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from connreset.docker import errors
from connreset.docker.engine import DockerCli
from connreset.errors import BackendError, NodeUnavailable

CLUSTER_LABEL = "io.x-k8s.kind.cluster"
ROLE_LABEL = "io.x-k8s.kind.role"


def _ulimit(entry: Mapping[str, Any]) -> str:
    """``{"Name": "RLIMIT_NOFILE", "Soft": 1024, "Hard": 1024}`` → ``nofile=1024:1024``."""
    name = str(entry.get("Name", "")).lower().removeprefix("rlimit_")
    return f"{name}={entry.get('Soft')}:{entry.get('Hard')}"


@attrs.frozen
class KindNode:
    """One node container, as ``docker inspect`` describes it."""

    name: str
    id: str
    state: str
    role: str | None = None
    image_id: str = ""
    image: str = ""
    #: ``--ulimit`` values the container was created with (the host-sysctl helper gets the same)
    ulimits: tuple[str, ...] = ()

    @property
    def running(self) -> bool:
        return self.state == "running"

    @classmethod
    def from_inspect(cls, data: Mapping[str, Any]) -> KindNode:
        config = data.get("Config") or {}
        state = data.get("State") or {}
        host = data.get("HostConfig") or {}
        labels = config.get("Labels") or {}
        return cls(
            name=str(data.get("Name", "")).lstrip("/"),
            id=str(data.get("Id", "")),
            state=str(state.get("Status") or ("running" if state.get("Running") else "unknown")),
            role=labels.get(ROLE_LABEL),
            image_id=str(data.get("Image", "")),
            image=str(config.get("Image", "")),
            ulimits=tuple(_ulimit(u) for u in host.get("Ulimits") or () if u.get("Name")),
        )


async def discover(cli: DockerCli, cluster: str) -> list[KindNode]:
    """The containers labelled as nodes of ``cluster`` (running or not), sorted by name.

    Raises:
        BackendError: the CLI or the engine failed (unreachable, saying where).
    """
    ids = (
        await cli.check(
            ["ps", "--all", "--quiet", "--no-trunc", "--filter", f"label={CLUSTER_LABEL}={cluster}"],
            what=f"listing kind cluster {cluster!r}'s containers",
        )
    ).split()
    if not ids:
        return []
    text = await cli.check(["inspect", "--type", "container", *ids], what="inspecting node containers")
    try:
        found = [KindNode.from_inspect(item) for item in json.loads(text)]
    except (ValueError, TypeError, AttributeError) as exc:
        raise BackendError(f"docker: cannot read `docker inspect`'s answer: {exc}") from None
    return sorted(found, key=lambda n: n.name)


def select(cluster: str, found: Sequence[KindNode], wanted: Sequence[str]) -> dict[str, KindNode]:
    """The container of each wanted node (every container found when none is wanted).

    Raises:
        NodeUnavailable: a wanted node has no container, or a container is not running.
    """
    by_name = {n.name: n for n in found}
    names = list(wanted) or list(by_name)
    missing = [n for n in names if n not in by_name]
    if missing or not names:
        node = missing[0] if len(missing) == 1 else None
        raise NodeUnavailable(errors.missing_nodes(cluster, missing or ["(any)"], list(by_name)), node=node)
    stopped = [(n, by_name[n].state) for n in names if not by_name[n].running]
    if stopped:
        node = stopped[0][0] if len(stopped) == 1 else None
        raise NodeUnavailable(errors.not_running(cluster, stopped), node=node)
    return {n: by_name[n] for n in names}
