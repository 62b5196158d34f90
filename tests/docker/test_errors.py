"""The docker access's failures are typed, each keeping its one line. The engine's answers that a
test here cannot provoke on a healthy engine are given as the CLI prints them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from connreset import BackendError, NodeUnavailable, TimedOut, ToolMissing, Unreachable
from connreset.docker import errors
from connreset.docker.engine import DockerCli
from connreset.docker.nodes import KindNode, select


@pytest.mark.parametrize(
    ("stderr", "kind", "start"),
    [
        (
            "Error response from daemon: No such container: kind-worker\n",
            NodeUnavailable,
            "kind-worker: its container 'kind-worker' is gone (No such container: kind-worker)",
        ),
        (
            'Error response from daemon: no container with name or ID "kind-worker" found\n',
            NodeUnavailable,
            "kind-worker: its container 'kind-worker' is gone",
        ),
        (
            "Error response from daemon: container 4a1b is not running\n",
            NodeUnavailable,
            "kind-worker: its container 'kind-worker' is not running (container 4a1b is not running)",
        ),
        (
            "Error response from daemon: can only create exec sessions on running containers: "
            "container state improper\n",
            NodeUnavailable,
            "kind-worker: its container 'kind-worker' is not running",
        ),
        (
            "Error response from daemon: OCI runtime exec failed: unable to start\n",
            BackendError,
            "kind-worker: the engine refused to run a command in 'kind-worker': OCI runtime exec failed",
        ),
    ],
)
def test_the_engine_refusing_is_typed_and_keeps_its_line(
    stderr: str, kind: type[BackendError], start: str
) -> None:
    failure = errors.daemon_failure("kind-worker", "kind-worker", stderr, "kind")
    assert type(failure) is kind and failure.node == "kind-worker" and failure.exit_code == 3
    assert str(failure) == errors.daemon_error("kind-worker", "kind-worker", stderr, "kind")
    assert str(failure).startswith(start) and "\n" not in str(failure)


def _node(name: str, state: str) -> KindNode:
    return KindNode(name=name, id="0" * 12, state=state, role="worker", image_id="", image="", ulimits=())


def test_a_node_without_a_running_container_is_unavailable() -> None:
    found = [_node("kind-control-plane", "running"), _node("kind-worker", "exited")]
    with pytest.raises(NodeUnavailable) as missing:
        select("kind", found, ["kind-control-plane", "node-3"])
    assert missing.value.node == "node-3"
    assert str(missing.value).startswith("docker: no container for node(s) node-3 among those labelled")
    with pytest.raises(
        NodeUnavailable, match=r"not running: kind-worker \(exited\); start them first"
    ) as stopped:
        select("kind", found, [])
    assert stopped.value.node == "kind-worker"
    with pytest.raises(NodeUnavailable, match=r"no container for node\(s\) \(any\)") as none:
        select("kind", [], [])
    assert none.value.node is None


async def test_a_missing_cli_is_a_missing_tool() -> None:
    with pytest.raises(ToolMissing) as err:
        await DockerCli("/nonexistent/docker").run(["version"])
    assert str(err.value) == errors.cli_missing("/nonexistent/docker")


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI")
async def test_an_engine_that_is_not_there_is_unreachable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The real CLI, pointed at a socket nobody listens on (no engine is started)."""
    url = f"unix://{tmp_path}/nothing.sock"
    monkeypatch.setenv("DOCKER_HOST", url)
    with pytest.raises(Unreachable) as err:
        await DockerCli("docker", timeout=30).server_version()
    assert str(err.value).startswith(f"docker: cannot reach the container engine at DOCKER_HOST={url}: ")
    assert err.value.node is None


async def test_a_cli_past_its_deadline_is_timed_out(tmp_path: Path) -> None:
    """A stand-in CLI that never answers (a real process, killed by its PID at the deadline)."""
    slow = tmp_path / "docker"
    slow.write_text("#!/bin/sh\nexec sleep 30\n")
    slow.chmod(0o755)
    with pytest.raises(TimedOut, match=r"^docker: listing containers did not finish within 0.2 s$"):
        await DockerCli(str(slow)).check(["ps"], what="listing containers", timeout=0.2)
