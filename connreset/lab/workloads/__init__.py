"""Workloads that run as real processes inside pod namespaces.

Each module here is a standalone script using only the standard library, started as
``python -S -u FILE ARGS`` so that fifty pods start quickly. :func:`argv_for` maps a
:class:`~connreset.testbed.Workload` to the argv the lab runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from connreset.errors import ValidationError
from connreset.testbed import Workload

HERE = Path(__file__).parent

#: The blog's client loop, as a fixed script; the URL arrives as an argument, never as shell text.
CURL_LOOP = 'while true; do curl -sS -o /dev/null "http://$1$2"; done'


def _script(name: str, *args: object) -> list[str]:
    return [sys.executable, "-S", "-u", str(HERE / f"{name}.py"), *map(str, args)]


def argv_for(
    workload: Workload, service_addr: dict[str, str], node_addr: dict[str, str] | None = None
) -> list[str]:
    """The argv for a workload; ``service_addr`` maps Service names to ``VIP``, ``node_addr`` node
    names to their addresses."""
    s = workload.settings

    def svc() -> str:
        name = str(s["service"])
        if name not in service_addr:
            raise ValidationError(f"workload {workload.name} targets unknown Service {name!r}")
        return service_addr[name]

    match workload.name:
        case "command":
            return list(workload.argv)
        case "http-server":
            return _script("http_server", s["port"], s["size"])
        case "curl-loop":
            return ["sh", "-c", CURL_LOOP, "curl-loop", f"{svc()}:{s['port']}", str(s["path"])]
        case "simple-app-client":
            return _script(
                "simple_app_client", svc(), s["port"], s["connections"], s["hold"], s.get("rate", 0.0)
            )
        case "boom-server":
            return _script("boom_server", s["port"], s["offset"], s["close_after"])
        case "nc-loop":
            return _script("nc_loop", svc(), s["port"], s["every"])
        case "udp-fill":
            node = str(s["node"])
            if node not in (node_addr or {}):
                raise ValidationError(f"workload udp-fill targets unknown node {node!r}")
            return _script("udp_fill", (node_addr or {})[node], s["count"])
    raise ValidationError(f"the lab has no workload {workload.name!r}")
