"""The workloads, by kind, and a builder function for each: the friendly front.

``workloads.boom_server(offset=-100_000)`` is ``BoomServer(offset=-100_000)``: each builder makes
the typed workload (:mod:`connreset.testbed.workloads`, where every default is written once).
Every backend renders the kinds it supports and refuses the others before anything runs.
"""

from __future__ import annotations

from connreset.testbed.workloads import (
    KINDS,
    BoomServer,
    Command,
    CurlLoop,
    HttpServer,
    Manifest,
    NcLoop,
    Opaque,
    SimpleAppClient,
    UdpFill,
    Workload,
    from_json,
    to_json,
)

__all__ = [
    "KINDS",
    "BoomServer",
    "Command",
    "CurlLoop",
    "HttpServer",
    "Manifest",
    "NcLoop",
    "Opaque",
    "SimpleAppClient",
    "UdpFill",
    "Workload",
    "boom_server",
    "command",
    "curl_loop",
    "from_json",
    "http_server",
    "manifest",
    "nc_loop",
    "simple_app_client",
    "to_json",
    "udp_fill",
]


#: The builders: each kind's class under a friendly name, so mypy checks every argument and the
#: defaults stay where the class declares them.
command = Command
http_server = HttpServer
curl_loop = CurlLoop
simple_app_client = SimpleAppClient
boom_server = BoomServer
nc_loop = NcLoop
udp_fill = UdpFill
manifest = Manifest
