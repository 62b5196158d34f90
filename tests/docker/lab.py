"""The lab, with kind-like node containers in its node namespaces: for the acceptance run of the
docker node access on the lab.

The lab builds its namespaces when it opens (and removes them when it closes), and a container
joins a namespace when it starts (``--network ns:/run/netns/crlab-node-N``). So the containers are
started here, right after the lab opens and before the node access opens (a testbed opens the
cluster first), and removed before the lab closes. Everything else is the lab's own. The engine
is the one ``DOCKER_HOST`` names, started beforehand with its node image::

    python -m tests.docker.kind --root /tmp/kind-lab --cluster lab &      # engine + image only
    export DOCKER_HOST=unix:///tmp/kind-lab/docker.sock
    python -m connreset experiments/issue_74839.py --cluster tests.docker.lab:lab_with_kind_nodes \\
        --cluster-opt time_scale=0.1 --node-access docker --node-opt cluster=lab

The containers are named after the lab's nodes (``node-1``, ``node-2``): the docker node access
takes the node name to be the container name, as kind makes it.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from connreset.lab.backend import LabBackend
from tests.docker.kind import IMAGE, KindNodes, PodmanEngine


class LabWithKindNodes:
    """Delegates everything to a :class:`LabBackend`; its open and close also start and remove
    one node container per lab node, labelled ``io.x-k8s.kind.cluster=CLUSTER``."""

    def __init__(self, lab: LabBackend, cluster: str, engine: PodmanEngine) -> None:
        self.lab = lab
        self.kind_cluster = cluster
        self.engine = engine
        self.kind_nodes: KindNodes | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.lab, name)

    async def open(self) -> None:
        await self.lab.open()
        try:
            nodes = {name: self.lab.lab_nodes[name].ns for name in self.lab.node_names()}
            self.kind_nodes = KindNodes(self.engine, self.kind_cluster, nodes, IMAGE)
            await asyncio.to_thread(self.kind_nodes.start)
        except BaseException:
            await self.lab.close()
            raise

    async def close(self) -> None:
        try:
            if self.kind_nodes is not None:
                await asyncio.to_thread(self.kind_nodes.stop)
        finally:
            await self.lab.close()


def lab_with_kind_nodes(kind_cluster: str = "lab", **lab_options: str) -> LabWithKindNodes:
    """``--cluster tests.docker.lab:lab_with_kind_nodes``; the engine is ``DOCKER_HOST``'s."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host.startswith("unix://"):
        raise ValueError("set DOCKER_HOST=unix:///ROOT/docker.sock of `python -m tests.docker.kind`")
    engine = PodmanEngine(Path(host.removeprefix("unix://")).parent)
    return LabWithKindNodes(LabBackend(**lab_options), kind_cluster, engine)
