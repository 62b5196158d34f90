"""Fixtures for the Kubernetes tests: the API server test double and a kubeconfig pointing at it
(re-exported by ``conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kubernetes.double import ApiServerDouble

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: double
  cluster: {{server: "{url}"}}
users:
- name: tester
  user: {{token: not-a-real-token}}
contexts:
- name: kind-test
  context: {{cluster: double, user: tester}}
- name: prod-eu
  context: {{cluster: double, user: tester}}
current-context: prod-eu
"""


@pytest.fixture
def api_double() -> Iterator[ApiServerDouble]:
    double = ApiServerDouble()
    double.start()
    yield double
    double.stop()


@pytest.fixture
def kubeconfig(tmp_path: Path, api_double: ApiServerDouble) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG.format(url=api_double.url))
    return path


@pytest.fixture
def allow_file(tmp_path: Path) -> Path:
    path = tmp_path / "contexts.toml"
    path.write_text("allow = []\n")
    return path


@pytest.fixture
def options(kubeconfig: Path, allow_file: Path) -> dict[str, str]:
    """Options for ``KubernetesCluster`` against the double."""
    return {
        "context": "kind-test",
        "kubeconfig": str(kubeconfig),
        "allow_file": str(allow_file),
        "poll": "0.01",
    }
