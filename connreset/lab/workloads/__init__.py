"""Workloads that run as real processes inside pod namespaces.

Each module here is a standalone script using only the standard library, started as
``python -S -u FILE ARGS`` so that fifty pods start quickly. :func:`argv_for` renders each
workload kind the lab runs to that argv (one function per kind, by :func:`functools.singledispatch`);
:func:`refusal` says why the lab cannot run any other kind, before anything runs.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping
from pathlib import Path

import attrs

from connreset.errors import ValidationError
from connreset.testbed import workloads as w

HERE = Path(__file__).parent

#: The blog's client loop, as a fixed script; the URL arrives as an argument, never as shell text.
CURL_LOOP = 'while true; do curl -sS -o /dev/null "http://$1$2"; done'


@attrs.frozen
class Addresses:
    """What a workload's argv may name: Service VIPs and node addresses, by name."""

    services: Mapping[str, str] = attrs.field(factory=dict)
    nodes: Mapping[str, str] = attrs.field(factory=dict)

    def service(self, workload: w.Workload, name: str) -> str:
        if name not in self.services:
            raise ValidationError(f"workload {workload.kind} targets unknown Service {name!r}")
        return self.services[name]

    def node(self, workload: w.Workload, name: str) -> str:
        if name not in self.nodes:
            raise ValidationError(f"workload {workload.kind} targets unknown node {name!r}")
        return self.nodes[name]


def _script(name: str, *args: object) -> list[str]:
    return [sys.executable, "-S", "-u", str(HERE / f"{name}.py"), *map(str, args)]


@functools.singledispatch
def render(workload: w.Workload, at: Addresses) -> list[str]:
    """The argv for a workload (registered per kind below)."""
    raise ValidationError(refusal(workload) or f"the lab has no rendering of {workload.kind!r}")


@render.register
def _(workload: w.Command, at: Addresses) -> list[str]:
    return list(workload.argv)


@render.register
def _(workload: w.HttpServer, at: Addresses) -> list[str]:
    return _script("http_server", workload.port, workload.size)


@render.register
def _(workload: w.CurlLoop, at: Addresses) -> list[str]:
    target = f"{at.service(workload, workload.service)}:{workload.port}"
    return ["sh", "-c", CURL_LOOP, "curl-loop", target, workload.path]


@render.register
def _(workload: w.SimpleAppClient, at: Addresses) -> list[str]:
    vip = at.service(workload, workload.service)
    return _script(
        "simple_app_client", vip, workload.port, workload.connections, workload.hold, workload.rate
    )


@render.register
def _(workload: w.BoomServer, at: Addresses) -> list[str]:
    return _script("boom_server", workload.port, workload.offset, workload.close_after)


@render.register
def _(workload: w.NcLoop, at: Addresses) -> list[str]:
    return _script("nc_loop", at.service(workload, workload.service), workload.port, workload.every)


@render.register
def _(workload: w.UdpFill, at: Addresses) -> list[str]:
    return _script("udp_fill", at.node(workload, workload.node), workload.count)


#: Kinds the lab does not run, with why.
REFUSED: Mapping[type[w.Workload], str] = {
    w.Manifest: "a Kubernetes manifest runs only on a Kubernetes cluster (the lab runs processes, "
    "not images)",
    w.Opaque: "the lab runs only workloads connreset describes",
}


def refusal(workload: w.Workload) -> str | None:
    """Why the lab cannot run ``workload`` (None: it can)."""
    if type(workload) in REFUSED:
        return f"the lab cannot run a {workload.kind} workload: {REFUSED[type(workload)]}"
    if render.dispatch(type(workload)) is render.dispatch(w.Workload):
        return f"the lab cannot run a {workload.kind} workload: it has no rendering of that kind"
    return None


def argv_for(
    workload: w.Workload, service_addr: Mapping[str, str], node_addr: Mapping[str, str] | None = None
) -> list[str]:
    """The argv for a workload; ``service_addr`` maps Service names to their VIPs, ``node_addr``
    node names to their addresses."""
    return render(workload, Addresses(service_addr, node_addr or {}))
