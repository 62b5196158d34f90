"""The ``docker`` CLI's and the engine's failures, translated once into typed one-line errors.

Each message names the node (or the cluster) and says what to check. They are raised, as the
type from :mod:`connreset.errors` below (all :class:`~connreset.BackendError`, exit 3), by
:mod:`connreset.docker.engine`, :mod:`~connreset.docker.nodes`, :mod:`~connreset.docker.sampler`
and :mod:`connreset.docker.access`, except the capability refusal (exit 2, before anything runs).

::

    FileNotFoundError of the CLI        ToolMissing      not installed / not at docker=PATH
    "Cannot connect to the Docker ..."  Unreachable      the engine, at DOCKER_HOST
    "Error response from daemon: ..."   NodeUnavailable  a node's container gone or stopped
                                        BackendError     the engine refused for another reason
    the CLI past its deadline           TimedOut         the CLI is killed, by PID
    no container for a node             NodeUnavailable  the label to check, the ones found
    a node container not running        NodeUnavailable  start it
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from connreset.errors import BackendError, NodeUnavailable

__all__ = [
    "cli_missing",
    "daemon_error",
    "daemon_failure",
    "exec_failed",
    "host_refused",
    "is_daemon_error",
    "is_unreachable",
    "missing_nodes",
    "no_host_sysctl",
    "not_running",
    "timed_out",
    "unreachable",
]

_UNREACHABLE = (
    "Cannot connect to the Docker daemon",
    "error during connect",
    "Is the docker daemon running",
    "connect: no such file or directory",
    "connect: connection refused",
)


def where() -> str:
    """Where the CLI looks for the engine: ``DOCKER_HOST``, a context, or its default socket."""
    if os.environ.get("DOCKER_HOST"):
        return f"DOCKER_HOST={os.environ['DOCKER_HOST']}"
    if os.environ.get("DOCKER_CONTEXT"):
        return f"DOCKER_CONTEXT={os.environ['DOCKER_CONTEXT']}"
    return "the docker CLI's current context (DOCKER_HOST is not set)"


def first_line(text: str, limit: int = 300) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def is_unreachable(stderr: str) -> bool:
    return any(marker in stderr for marker in _UNREACHABLE)


def is_daemon_error(stderr: str) -> bool:
    """The engine refused the request (as opposed to the command in the container failing)."""
    return first_line(stderr).startswith("Error response from daemon:")


def cli_missing(program: str) -> str:
    return (
        f"docker: the docker CLI {program!r} was not found; install it (kind needs it too) or give "
        f"its path with --node-opt docker=PATH"
    )


def unreachable(stderr: str) -> str:
    return (
        f"docker: cannot reach the container engine at {where()}: {first_line(stderr)}; check that "
        f"it runs and that DOCKER_HOST (or the docker context) points at it"
    )


def daemon_error(node: str, container: str, stderr: str, cluster: str) -> str:
    return _daemon(node, container, stderr, cluster)[1]


def daemon_failure(node: str, container: str, stderr: str, cluster: str) -> BackendError:
    """:func:`daemon_error` as its type: NodeUnavailable when the container is gone or stopped."""
    kind, message = _daemon(node, container, stderr, cluster)
    return kind(message, node=node)


def _daemon(node: str, container: str, stderr: str, cluster: str) -> tuple[type[BackendError], str]:
    detail = first_line(stderr).removeprefix("Error response from daemon:").strip()
    lowered = detail.lower()
    if "no such container" in lowered or "no container with name or id" in lowered:
        return NodeUnavailable, (
            f"{node}: its container {container!r} is gone ({detail}); the kind cluster {cluster!r} may "
            f"have been deleted: check `docker ps -a --filter label=io.x-k8s.kind.cluster={cluster}`"
        )
    if "is not running" in lowered or "state improper" in lowered or "is paused" in lowered:
        return NodeUnavailable, (
            f"{node}: its container {container!r} is not running ({detail}); start it "
            f"(`docker start {container}`) or recreate the cluster"
        )
    return BackendError, f"{node}: the engine refused to run a command in {container!r}: {detail}"


def timed_out(node: str, argv: Sequence[str], timeout: float) -> str:
    command = " ".join(argv)
    if len(command) > 80:
        command = command[:79] + "…"
    return (
        f"{node}: `{command}` did not finish within {timeout:g} s through docker exec; the node or the "
        f"engine may be overloaded (a step's timeout= raises it)"
    )


def exec_failed(what: str, args: Sequence[str], code: int, stderr: str) -> str:
    return f"docker: {what} failed: `docker {' '.join(args[:3])} …` exited {code}: {first_line(stderr)}"


def missing_nodes(cluster: str, missing: Sequence[str], found: Sequence[str]) -> str:
    have = ", ".join(found) if found else "none"
    return (
        f"docker: no container for node(s) {', '.join(missing)} among those labelled "
        f"io.x-k8s.kind.cluster={cluster} (found: {have}); the node name is the container name, as kind "
        f"makes it: check the cluster name and `docker ps -a --filter label=io.x-k8s.kind.cluster={cluster}`"
    )


def not_running(cluster: str, stopped: Sequence[tuple[str, str]]) -> str:
    which = ", ".join(f"{name} ({state})" for name, state in stopped)
    return f"docker: node container(s) of kind cluster {cluster!r} not running: {which}; start them first"


def no_host_sysctl(cluster: str) -> str:
    """Why the access lacks ``host-sysctl``, for the validation message (exit 2)."""
    return (
        f"the nodes of kind cluster {cluster!r} are containers sharing this machine's kernel, where "
        f"nf_conntrack_max and nf_conntrack_buckets are machine-wide and read-only inside a node's "
        f"network namespace; to change them for the whole machine (every kind node and the machine "
        f"itself) through a privileged helper container, give --node-opt host_sysctls=allow"
    )


def host_refused(node: str) -> str:
    return (
        f"{node}: the docker node access does not reach the host's network namespace without "
        f"--node-opt host_sysctls=allow"
    )
