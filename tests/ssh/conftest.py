"""Fixtures for the ssh node access: ``crssh-*`` namespaces and real sshd on loopback.

These tests never touch the lab (``crlab-*``) nor any sysctl of the machine's own namespace; on
top of the root conftest's after-test check (no lab left, machine-wide sysctls as they were) they
check that no ``crssh-*`` namespace of theirs is left.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ssh.sshd import SshFarm, add_netns, delete_netns, have_sshd, test_namespaces


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if have_sshd():
        return
    skip = pytest.mark.skip(reason="needs OpenSSH's sshd and ssh-keygen (apt-get install openssh-server)")
    for item in items:
        if "ssh" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def no_crssh_left(request: pytest.FixtureRequest) -> Iterator[None]:
    before = test_namespaces() if os.geteuid() == 0 else []
    yield
    if "root" in request.keywords and os.geteuid() == 0:
        assert test_namespaces() == before, "a crssh-* namespace was left behind"


@pytest.fixture
def namespaces() -> Iterator[list[str]]:
    """Two fresh network namespaces, ``crssh-PID-a`` and ``crssh-PID-b`` (deleted afterwards)."""
    names = [f"crssh-{os.getpid()}-a", f"crssh-{os.getpid()}-b"]
    try:
        for name in names:
            add_netns(name)
        yield names
    finally:
        for name in names:
            delete_netns(name)


@pytest.fixture
def farm(tmp_path: Path, namespaces: list[str]) -> Iterator[SshFarm]:
    """node-1 and node-2: an sshd each, entering its own namespace, plus a jump host sshd."""
    with SshFarm(tmp_path / "farm", {"node-1": namespaces[0], "node-2": namespaces[1]}, jump=True) as f:
        yield f
