"""Manifests: the upstream and blog workloads, and offline validation for three minor versions."""

from __future__ import annotations

import attrs
import kubernetes_validate
import pytest
from kubernetes_validate import utils

from connreset.errors import ValidationError
from connreset.kubernetes import manifests
from connreset.kubernetes.debug_access import debug_pod
from connreset.testbed.cluster import RUN_LABEL, DeploymentSpec
from connreset.testbed.probes import Liveness
from connreset.workloads import BoomServer, Command, CurlLoop, HttpServer, Manifest, NcLoop, SimpleAppClient

SPECS = [
    DeploymentSpec(
        "boom-server",
        BoomServer(),
        1,
        node="kind-worker",
        service_port=9000,
        liveness=Liveness.tcp(9000, period=5),
    ),
    DeploymentSpec(
        "nginx",
        HttpServer(size=4 * 1024 * 1024),
        1,
        service_port=80,
        liveness=Liveness.http(80, "/", failure_threshold=3),
    ),
    DeploymentSpec("client", CurlLoop("nginx"), 10, node="kind-control-plane"),
    DeploymentSpec("fill", SimpleAppClient("nginx", connections=4, rate=8), 2),
    DeploymentSpec("nc", NcLoop("boom-server", port=9000, every=2.0), 1),
    DeploymentSpec("cmd", Command(("sleep", "3600")), 1, labels={"team": "net"}),
]
USER_MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: mine}
spec:
  selector: {matchLabels: {app: mine}}
  template:
    metadata: {labels: {app: mine}}
    spec:
      containers:
      - {name: app, image: example.org/app:1}
"""


def newest_minor_versions(n: int = 3) -> list[str]:
    """The newest patch of each of the ``n`` newest minor versions kubernetes-validate knows."""
    by_minor: dict[str, str] = {}
    for version in utils.all_versions():
        by_minor[utils.major_minor(version)] = version  # all_versions is ascending
    minors = sorted(by_minor, key=lambda v: tuple(int(p) for p in v.split(".")))
    return [by_minor[m] for m in minors[-n:]]


def every_object() -> list[manifests.Manifest]:
    objects = [manifests.namespace("r1"), debug_pod("kind-worker", "r1", "busybox:1.36")]
    for spec in SPECS:
        objects += manifests.manifests(spec, "r1")
    user = DeploymentSpec("mine", Manifest(USER_MANIFEST), 2)
    objects += manifests.manifests(user, "r1")
    return objects


def test_three_minor_versions_are_known() -> None:
    assert len(set(map(utils.major_minor, newest_minor_versions()))) == 3


@pytest.mark.parametrize("version", newest_minor_versions())
def test_every_manifest_validates(version: str) -> None:
    for obj in every_object():
        kubernetes_validate.validate(obj, version, strict=True)


def test_validation_can_fail() -> None:
    bad = manifests.deployment(SPECS[0], "r1")
    bad["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, newest_minor_versions()[-1], strict=True)


def test_every_object_carries_the_run_label_and_namespace() -> None:
    for obj in every_object():
        assert obj["metadata"]["labels"][RUN_LABEL] == "r1", obj["kind"]
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "connreset-r1"
    for spec in SPECS:
        template = manifests.deployment(spec, "r1")["spec"]["template"]
        assert template["metadata"]["labels"][RUN_LABEL] == "r1"


def test_boom_server_is_upstreams() -> None:
    dep = manifests.deployment(SPECS[0], "r1")
    pod = dep["spec"]["template"]["spec"]
    [c] = pod["containers"]
    assert c["image"] == "registry.k8s.io/e2e-test-images/regression-issue-74839:1.4"
    assert c["securityContext"]["capabilities"]["add"] == ["NET_RAW"]
    assert c["env"] == [
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "POD_IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}},
    ]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["kind-worker"]}]}]
    assert dep["spec"]["template"]["metadata"]["annotations"] == {
        manifests.CRASH_STAND_IN: "ERROR: RST received"
    }


def test_boom_server_lab_only_settings_are_named_not_refused() -> None:
    """The image has one shape (seq-100000, 10 s, port 9000): other settings run that shape, and
    the notes (printed by --dry-run, kept in the Deploy step's detail) say so."""
    lab = DeploymentSpec("b", BoomServer(offset=1_000_000, close_after=10.0, port=9000), 1)
    upstream = attrs.evolve(lab, workload=BoomServer(offset=-100_000))
    assert (
        manifests.deployment(lab, "r1")["spec"]["template"]
        == manifests.deployment(upstream, "r1")["spec"]["template"]
    )
    [offset, rst] = manifests.notes(lab)
    assert "forges at seq-100000" in offset and "offset=1000000 is lab-only" in offset
    assert "keeps running" in rst
    assert manifests.notes(upstream) == [rst]  # the shape matches: only the RST behaviour differs
    odd = attrs.evolve(lab, workload=BoomServer(offset=-100_000, close_after=3.0, port=9001))
    assert [n.split(";")[1].strip() for n in manifests.notes(odd)[:2]] == [
        "close_after=3 is lab-only",
        "port=9001 is lab-only",
    ]
    assert manifests.notes(SPECS[1]) == []


def test_client_loops_are_verbatim() -> None:
    curl = manifests.deployment(SPECS[2], "r1")["spec"]["template"]["spec"]["containers"][0]
    assert curl["command"] == [
        "sh",
        "-c",
        "while true; do curl -o file.txt http://nginx/small-file.txt; done",
    ]
    nc = manifests.deployment(SPECS[4], "r1")["spec"]["template"]["spec"]["containers"][0]
    assert nc["command"] == ["sh", "-c", "while true; do sleep 2; nc boom-server 9000& done"]
    nginx = manifests.deployment(SPECS[1], "r1")["spec"]["template"]["spec"]
    assert nginx["initContainers"][0]["command"][-1] == "head -c 4194304 /dev/zero > " + manifests.FILE_PATH


def test_images_are_configurable() -> None:
    images = manifests.Images.parse(
        "boom-server=mirror.example/regression-issue-74839:1.4, nginx=mirror.example/nginx:1"
    )
    c = manifests.deployment(SPECS[0], "r1", images)["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "mirror.example/regression-issue-74839:1.4"
    with pytest.raises(ValidationError, match="unknown"):
        manifests.Images.parse("redis=x")


def test_user_manifest_keeps_its_template() -> None:
    user = DeploymentSpec("mine", Manifest(USER_MANIFEST), 2, node="n1")
    dep = manifests.deployment(user, "r1")
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["template"]["spec"]["containers"] == [{"name": "app", "image": "example.org/app:1"}]
    assert dep["spec"]["template"]["metadata"]["labels"]["app"] == "mine"
    with pytest.raises(ValidationError, match="kind: Deployment"):
        manifests.deployment(DeploymentSpec("x", Manifest("kind: Pod"), 1), "r1")


def test_run_ids_must_name_a_namespace() -> None:
    with pytest.raises(ValidationError):
        manifests.namespace_name("Run_1")
    with pytest.raises(ValidationError):
        manifests.namespace_name("a" * 60)


def test_a_liveness_probe_is_the_containers_livenessprobe() -> None:
    """What the lab sends from the node, kubelet sends in a cluster: the same fields."""
    (container,) = manifests.deployment(SPECS[1], "r1")["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"] == {
        "httpGet": {"path": "/", "port": 80},
        "periodSeconds": 10,
        "timeoutSeconds": 1,
        "failureThreshold": 3,
        "initialDelaySeconds": 0,
    }
    (boom,) = manifests.deployment(SPECS[0], "r1")["spec"]["template"]["spec"]["containers"]
    assert boom["livenessProbe"]["tcpSocket"] == {"port": 9000}
    assert "livenessProbe" not in str(manifests.deployment(SPECS[2], "r1"))
