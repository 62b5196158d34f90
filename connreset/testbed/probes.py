"""Liveness probes, as a pod spec has them: HTTP or TCP, with period, timeout and failureThreshold.

``Deploy(..., liveness=Liveness.http(80, "/healthz"))``. kubelet sends each probe from the node
(not from inside the pod), so a probe passes through the node's own conntrack table: when that
table is full, the probe's SYN is dropped, the probe times out, and after ``failure_threshold``
failures in a row kubelet kills the container and restarts it with its back-off
(CrashLoopBackOff). The lab does the same (:mod:`connreset.lab.probes`); the Kubernetes backend
renders the field as the container's ``livenessProbe``.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from connreset._support import numbers


def _whole(low: int) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
        numbers.whole(attribute.name, value, low)

    return check


def _port(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
    numbers.whole(attribute.name, value, 1, 65535)


@attrs.frozen
class Liveness:
    """A liveness probe: ``kind`` ``http`` (a GET of ``path``; 200-399 passes) or ``tcp`` (a
    connection opens). Numbers are whole seconds, as in a pod spec (``periodSeconds``,
    ``timeoutSeconds``, ``failureThreshold``, ``initialDelaySeconds``), with kubelet's defaults."""

    kind: Literal["http", "tcp"] = attrs.field(validator=attrs.validators.in_(("http", "tcp")))
    port: int = attrs.field(validator=_port)
    path: str = "/"
    period: int = attrs.field(default=10, validator=_whole(1))
    timeout: int = attrs.field(default=1, validator=_whole(1))
    failure_threshold: int = attrs.field(default=3, validator=_whole(1))
    initial_delay: int = attrs.field(default=0, validator=_whole(0))

    def __attrs_post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ValueError(f"path must start with /, got {self.path!r}")

    @classmethod
    def http(
        cls, port: int, path: str = "/", *, period: int = 10, timeout: int = 1, failure_threshold: int = 3
    ) -> Liveness:
        """``httpGet`` on ``port`` and ``path``."""
        return cls("http", port, path, period, timeout, failure_threshold)

    @classmethod
    def tcp(cls, port: int, *, period: int = 10, timeout: int = 1, failure_threshold: int = 3) -> Liveness:
        """``tcpSocket`` on ``port``."""
        return cls("tcp", port, "/", period, timeout, failure_threshold)

    def describe(self) -> str:
        what = f"GET :{self.port}{self.path}" if self.kind == "http" else f"tcp :{self.port}"
        return (
            f"liveness {what} every {self.period}s, timeout {self.timeout}s, "
            f"failureThreshold {self.failure_threshold}"
        )

    def manifest(self) -> dict[str, object]:
        """The container's ``livenessProbe``."""
        action: dict[str, object] = (
            {"httpGet": {"path": self.path, "port": self.port}}
            if self.kind == "http"
            else {"tcpSocket": {"port": self.port}}
        )
        return {
            **action,
            "periodSeconds": self.period,
            "timeoutSeconds": self.timeout,
            "failureThreshold": self.failure_threshold,
            "initialDelaySeconds": self.initial_delay,
        }
