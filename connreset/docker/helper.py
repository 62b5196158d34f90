"""The host-sysctl helper: one privileged container in the host's network namespace.

kind's nodes share this machine's kernel; ``nf_conntrack_max``/``nf_conntrack_buckets`` are
machine-wide and writable only in the kernel's initial network namespace. With
``host_sysctls=allow``, ``host=True`` commands run in a helper container made like this::

    docker run -d --name connreset-host-TAG --label connreset.io/run-id=RUN
        --label connreset.io/role=host-sysctl --network host --privileged --pull never
        [--ulimit … as the node's] --entrypoint sleep NODE_IMAGE_ID infinity

from the node's own image, by its id (already present: never pulled). It is made on first use,
reused, and removed by :meth:`HostHelper.remove_run` (``end_run``, ``connreset restore``) and
:meth:`HostHelper.remove_own` (closing the access).

There is no state file of machine-wide originals, as the lab keeps: the run's journal holds each
change's undo record (the old value), fsynced before the change is made, and ``connreset restore
JOURNAL`` replays it through a new helper.
"""

from __future__ import annotations

import asyncio
import re

from connreset._support.logs import get_logger
from connreset.docker.engine import DockerCli
from connreset.docker.nodes import KindNode
from connreset.testbed.cluster import RUN_LABEL

log = get_logger(__name__)

ROLE_LABEL = "connreset.io/role"
ROLE = "host-sysctl"
#: labels a helper made outside a run (``connreset restore`` replaying undos): removed on close
SESSION_LABEL = "connreset.io/session"
_TAG = re.compile(r"[^A-Za-z0-9_.-]")


def helper_name(tag: str) -> str:
    return "connreset-host-" + _TAG.sub("-", tag)[:48]


def run_args(name: str, node: KindNode, labels: dict[str, str]) -> list[str]:
    """``docker run`` arguments for the helper, made from ``node``'s image."""
    args = ["run", "--detach", "--name", name, "--network", "host", "--privileged", "--pull", "never"]
    for key, value in sorted(labels.items()):
        args += ["--label", f"{key}={value}"]
    for ulimit in node.ulimits:
        args += ["--ulimit", ulimit]
    return [*args, "--entrypoint", "sleep", node.image_id or node.image, "infinity"]


class HostHelper:
    """Makes, reuses and removes the helper container; one per access (and per run)."""

    def __init__(self, cli: DockerCli, session: str) -> None:
        self.cli = cli
        self.session = session
        self.container: str | None = None
        self._lock = asyncio.Lock()

    async def ensure(self, node: KindNode, run_id: str | None) -> str:
        """The helper's name, made now if there is none.

        Raises:
            BackendError: it could not be made (the image is gone, the engine refused).
        """
        async with self._lock:
            if self.container is not None:
                return self.container
            labels = {ROLE_LABEL: ROLE, SESSION_LABEL: self.session}
            if run_id is not None:
                labels[RUN_LABEL] = run_id
            name = helper_name(run_id or self.session)
            await self.cli.check(
                run_args(name, node, labels),
                what=f"creating the host-sysctl helper container from {node.name}'s image {node.image}",
            )
            self.container = name
            log.info("docker host helper created", container=name, image=node.image, run_id=run_id)
            return name

    async def _remove(self, label: str) -> list[str]:
        ids = (
            await self.cli.check(
                [
                    "ps",
                    "--all",
                    "--filter",
                    f"label={label}",
                    "--filter",
                    f"label={ROLE_LABEL}={ROLE}",
                    "--format",
                    "{{.Names}}",
                ],
                what="listing host-sysctl helper containers",
            )
        ).split()
        if not ids:
            return []
        await self.cli.check(["rm", "--force", *ids], what="removing host-sysctl helper containers")
        if self.container in ids:
            self.container = None
        log.info("docker host helpers removed", containers=ids)
        return [f"removed host-sysctl helper container {name}" for name in ids]

    async def remove_run(self, run_id: str) -> list[str]:
        """Remove the helpers labelled with ``run_id`` (this process's or a killed run's)."""
        return await self._remove(f"{RUN_LABEL}={run_id}")

    async def remove_own(self) -> list[str]:
        """Remove every helper this access made (also those made outside a run)."""
        lines = await self._remove(f"{SESSION_LABEL}={self.session}")
        self.container = None
        return lines

    def forget(self) -> None:
        """A new run starts: the next host command makes a helper labelled with its id."""
        self.container = None
