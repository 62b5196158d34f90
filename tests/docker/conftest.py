"""Fixtures for the docker node access: podman's Docker-compatible service, a node image made on
this machine, ``crdock-*`` namespaces and kind-like node containers joined to them.

These tests never touch the lab (``crlab-*``) nor write any sysctl of the machine's own namespace
(the host-sysctl helper is only *read* through). The root conftest's after-test check asserts that
no lab exists and that the machine-wide sysctls did not move; another engineer's lab may be running
on this machine, so here it is replaced by one that checks what these tests own (no ``crdock-*``
namespace and no container left) and compares the machine-wide sysctls only when no lab ran
meanwhile.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docker.kind import (
    IMAGE,
    KindNodes,
    PodmanEngine,
    add_netns,
    build_node_image,
    crdock_namespaces,
    delete_netns,
    have_engine,
)

GLOBALS = ("nf_conntrack_max", "nf_conntrack_buckets")


def _globals() -> dict[str, str]:
    return {k: Path(f"/proc/sys/net/netfilter/{k}").read_text().strip() for k in GLOBALS}


def _lab_running() -> bool:
    netns = Path("/run/netns")
    return netns.is_dir() and any(p.name.startswith("crlab-") for p in netns.iterdir())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if have_engine():
        return
    skip = pytest.mark.skip(reason="needs podman and the docker CLI (apt-get install podman runc)")
    for item in items:
        if "docker" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def no_crdock_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every root test: no crdock-* namespace left; machine-wide sysctls as they were, when
    no lab (another engineer's) was running to change them."""
    if "root" not in request.keywords or os.geteuid() != 0:
        yield
        return
    namespaces = crdock_namespaces()
    lab_before = _lab_running()
    before = _globals()
    yield
    assert crdock_namespaces() == namespaces, "a crdock-* namespace was left behind"
    if not lab_before and not _lab_running():
        assert _globals() == before, "a machine-wide sysctl changed"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodmanEngine]:
    """One podman service (storage of its own) and the node image, for a test module."""
    if os.geteuid() != 0 or not have_engine():
        pytest.skip("needs root, podman and the docker CLI")
    with PodmanEngine(tmp_path_factory.mktemp("engine")) as e:
        build_node_image(e)
        yield e
        leftover = e.docker("ps", "--all", "--format", "{{.Names}}").split()
        if leftover:
            e.docker("rm", "--force", *leftover, check=False)
        assert leftover == [], f"containers left behind: {leftover}"


@pytest.fixture
def docker_host(engine: PodmanEngine, monkeypatch: pytest.MonkeyPatch) -> PodmanEngine:
    """The engine, with DOCKER_HOST pointing at it for the code under test."""
    monkeypatch.setenv("DOCKER_HOST", engine.url)
    return engine


@pytest.fixture
def namespaces(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """Two fresh network namespaces, ``crdock-PID-a`` and ``crdock-PID-b`` (deleted afterwards)."""
    names = [f"crdock-{os.getpid()}-a", f"crdock-{os.getpid()}-b"]
    try:
        for name in names:
            add_netns(name)
        yield names
    finally:
        for name in names:
            delete_netns(name)


def cluster_name(request: pytest.FixtureRequest) -> str:
    """The test's name, as a kind cluster name (the label value)."""
    name = request.node.name.removeprefix("test_").replace("_", "-")
    return "".join(ch for ch in name if ch.isalnum() or ch == "-")[:40].strip("-")


@pytest.fixture
def kind_cluster(
    request: pytest.FixtureRequest, docker_host: PodmanEngine, namespaces: list[str]
) -> Iterator[KindNodes]:
    """A cluster named after the test: ``NAME-control-plane`` in the first namespace, ``NAME-worker``
    in the second, as kind names them."""
    name = cluster_name(request)
    nodes = {f"{name}-control-plane": namespaces[0], f"{name}-worker": namespaces[1]}
    with KindNodes(docker_host, name, nodes, IMAGE) as cluster:
        yield cluster
