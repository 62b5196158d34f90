"""Liveness probes as data: validation, words, and the pod spec's livenessProbe."""

from __future__ import annotations

import pytest

from connreset import Deploy, workloads
from connreset.testbed.probes import Liveness


def test_http_and_tcp_probes_render_as_a_pod_spec_has_them() -> None:
    assert Liveness.http(80, "/healthz", period=5, failure_threshold=2).manifest() == {
        "httpGet": {"path": "/healthz", "port": 80},
        "periodSeconds": 5,
        "timeoutSeconds": 1,
        "failureThreshold": 2,
        "initialDelaySeconds": 0,
    }
    assert Liveness.tcp(9000).manifest()["tcpSocket"] == {"port": 9000}
    assert Liveness.tcp(9000).describe() == "liveness tcp :9000 every 10s, timeout 1s, failureThreshold 3"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "udp", "port": 80}, "kind"),
        ({"kind": "tcp", "port": 0}, "port"),
        ({"kind": "tcp", "port": 80, "period": 0}, "period"),
        ({"kind": "tcp", "port": 80, "timeout": 0.5}, "timeout"),
        ({"kind": "tcp", "port": 80, "failure_threshold": True}, "failure_threshold"),
        ({"kind": "http", "port": 80, "path": "healthz"}, "path"),
    ],
)
def test_invalid_probes_are_refused_naming_the_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Liveness(**kwargs)  # type: ignore[arg-type]


def test_deploy_carries_the_probe_into_its_spec_and_plan() -> None:
    probe = Liveness.http(80)
    step = Deploy("web", workloads.http_server(), port=80, liveness=probe)
    assert step.spec().liveness == probe
    with pytest.raises(TypeError):
        Deploy("web", workloads.http_server(), liveness="yes")  # type: ignore[arg-type]
