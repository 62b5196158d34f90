"""Typed workloads: every kind is rendered or refused by every backend, and round-trips to JSON."""

from __future__ import annotations

import pytest

from connreset import Deploy, Experiment, ValidationError, workloads
from connreset.experiment.checks import check_plan
from connreset.kubernetes import manifests
from connreset.lab import workloads as lab
from connreset.testbed import DeploymentSpec, Testbed
from connreset.testbed import workloads as w
from connreset.testing import MemoryNodeAccess

#: One example of every kind. A new kind without an example fails the first test: give it one.
EXAMPLES: dict[str, w.Workload] = {
    "command": w.Command(("sleep", "1"), port=8080),
    "http-server": w.HttpServer(size=10),
    "curl-loop": w.CurlLoop("nginx"),
    "simple-app-client": w.SimpleAppClient("nginx", connections=2, rate=5.0),
    "boom-server": w.BoomServer(offset=-100_000),
    "nc-loop": w.NcLoop("boom-server"),
    "udp-fill": w.UdpFill("node-1", 10),
    "manifest": w.Manifest("kind: Deployment\nspec:\n  template:\n    spec:\n      containers: []\n"),
    "opaque": w.Opaque("theirs"),
}


def test_every_kind_has_an_example() -> None:
    assert set(EXAMPLES) == set(w.KINDS)


def _lab(workload: w.Workload) -> object:
    return lab.argv_for(
        workload, {"nginx": "198.19.128.1", "boom-server": "198.19.128.2"}, {"node-1": "198.18.0.1"}
    )


def _kubernetes(workload: w.Workload) -> object:
    return manifests.deployment(DeploymentSpec("x", workload, 1, service_port=80), "r1")


@pytest.mark.parametrize(
    "backend", [(lab.refusal, _lab), (manifests.refusal, _kubernetes)], ids=["lab", "kubernetes"]
)
@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_each_backend_renders_each_kind_or_refuses_it_with_a_reason(backend: tuple, kind: str) -> None:
    refusal, render = backend
    workload = EXAMPLES[kind]
    why = refusal(workload)
    if why is None:
        assert render(workload)  # an argv, or a Deployment
    else:
        assert kind in why and ":" in why  # names the kind and says why
        with pytest.raises(ValidationError):
            render(workload)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_json_round_trip(kind: str) -> None:
    workload = EXAMPLES[kind]
    assert w.from_json(w.to_json(workload)) == workload


def test_json_refuses_unknown_kinds_and_fields() -> None:
    with pytest.raises(ValueError, match="unknown workload kind 'nginx'"):
        w.from_json({"kind": "nginx"})
    with pytest.raises(ValueError, match=r"boom-server: unknown field\(s\) offfset"):
        w.from_json({"kind": "boom-server", "offfset": 1})
    with pytest.raises(ValueError, match="offset must be an integer"):
        w.from_json({"kind": "boom-server", "offset": "1"})


def test_one_default_per_field_and_the_builders_are_the_classes() -> None:
    assert workloads.boom_server() == w.BoomServer(100_000, 9000, 10.0)
    assert workloads.simple_app_client("s") == w.SimpleAppClient("s", 10, 0.0, 0.0, 80)
    assert workloads.http_server().size == 4 * 1024 * 1024


def test_the_service_targets_where_the_workload_listens() -> None:
    spec = DeploymentSpec("web", w.Command(("srv",), port=8080), 1, service_port=80)
    assert spec.target_port == 8080
    svc = manifests.service(spec, "r1")
    assert svc is not None and svc["spec"]["ports"] == [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]
    assert DeploymentSpec("c", w.Command(("x",)), 1, service_port=81).target_port == 81


def test_a_kind_the_backend_cannot_run_is_refused_before_anything_runs() -> None:
    from connreset.lab.access import LabNodeAccess
    from connreset.lab.backend import LabBackend

    plan = Experiment.single("m", Deploy("mine", workloads.manifest("kind: Deployment"))).compile()
    with pytest.raises(ValidationError, match="lab cannot run a manifest workload: a Kubernetes manifest"):
        check_plan(plan, Testbed(LabBackend(), LabNodeAccess()))
    fill = Experiment.single("f", Deploy("fill", workloads.udp_fill("node-1", count=5))).compile()
    from connreset.kubernetes.cluster import KubernetesCluster

    with pytest.raises(ValidationError, match="kubernetes backend cannot run a udp-fill workload"):
        check_plan(fill, Testbed(KubernetesCluster(context="kind-kind"), MemoryNodeAccess()))
