"""The guard: which contexts connreset may act on, decided from files alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from connreset.errors import ValidationError
from connreset.kubernetes import guard
from connreset.kubernetes.cluster import KubernetesCluster
from tests.kubernetes.double import ApiServerDouble


@pytest.mark.parametrize("context", ["kind-kind", "k3d-dev", "minikube", "docker-desktop", "kind-liveness"])
def test_local_contexts_are_allowed(context: str, allow_file: Path) -> None:
    assert "local" in guard.check_context(context, allow_file=str(allow_file))


@pytest.mark.parametrize("context", ["prod-eu", "production", "eu-live-1", "kind-prod", "PROD_us"])
def test_production_looking_contexts_are_refused(context: str, allow_file: Path) -> None:
    with pytest.raises(ValidationError, match="looks like production"):
        guard.check_context(context, allow_file=str(allow_file))


def test_other_contexts_need_listing(tmp_path: Path) -> None:
    listed = tmp_path / "contexts.toml"
    listed.write_text('allow = ["staging-eu", "prod-eu"]\n')
    assert "listed" in guard.check_context("staging-eu", allow_file=str(listed))
    assert "listed" in guard.check_context("prod-eu", allow_file=str(listed))
    with pytest.raises(ValidationError, match="not a local cluster"):
        guard.check_context("gke_project_zone_cluster", allow_file=str(listed))
    with pytest.raises(ValidationError, match="does not exist"):
        guard.check_context("kind-kind", allow_file=str(tmp_path / "missing.toml"))
    listed.write_text('allow = "prod-eu"\n')
    with pytest.raises(ValidationError, match="list of context names"):
        guard.check_context("prod-eu", allow_file=str(listed))


def test_kubeconfig_is_found_as_kubectl_finds_it(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert guard.kubeconfig_paths(None, {"KUBECONFIG": f"{a}{os.pathsep}{b}"}) == [a, b]
    assert guard.kubeconfig_paths(None, {}) == [Path("~/.kube/config").expanduser()]
    assert guard.kubeconfig_paths(str(a), {"KUBECONFIG": str(b)}) == [a]


def test_a_context_missing_from_the_kubeconfig_is_refused(kubeconfig: Path) -> None:
    guard.check_kubeconfig("kind-test", [kubeconfig])
    with pytest.raises(ValidationError, match="not in the kubeconfig"):
        guard.check_kubeconfig("kind-other", [kubeconfig])


async def test_prod_eu_makes_no_request(
    kubeconfig: Path, allow_file: Path, api_double: ApiServerDouble, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError) as refused:
        KubernetesCluster(context="prod-eu", kubeconfig=str(kubeconfig), allow_file=str(allow_file))
    assert refused.value.exit_code == 2
    # also when the allow file changes between construction and open
    listed = tmp_path / "listed.toml"
    listed.write_text('allow = ["prod-eu"]\n')
    cluster = KubernetesCluster(context="prod-eu", kubeconfig=str(kubeconfig), allow_file=str(listed))
    listed.write_text("allow = []\n")
    with pytest.raises(ValidationError, match="looks like production"):
        await cluster.open()
    assert api_double.requests == []
