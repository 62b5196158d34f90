"""Built-in workloads, named so that every backend can map them to what it runs.

The lab runs them as processes in pod namespaces; a Kubernetes backend maps them to images.
"""

from __future__ import annotations

from collections.abc import Sequence

from connreset import numbers
from connreset.testbed import Workload


def _port(port: int) -> int:
    return numbers.whole("port", port, 1, 65535)


def command(argv: Sequence[str]) -> Workload:
    """Any argv, run as the pod's process (in the lab: in the pod's network namespace)."""
    if not argv:
        raise ValueError("command workload needs a non-empty argv")
    return Workload("command", tuple(argv))


def http_server(*, size: int = 4 * 1024 * 1024, port: int = 80) -> Workload:
    """The blog's nginx: one HTTP server serving ``/small-file.txt`` of ``size`` bytes."""
    numbers.whole("size", size, 0)
    return Workload("http-server", settings={"size": size, "port": _port(port)})


def curl_loop(service: str, *, path: str = "/small-file.txt", port: int = 80) -> Workload:
    """The blog's client, verbatim: ``while true; do curl -o file.txt http://SVC/PATH; done``."""
    return Workload("curl-loop", settings={"service": service, "path": path, "port": _port(port)})


def simple_app_client(
    service: str, *, connections: int = 10, hold: float = 0.0, rate: float = 0.0, port: int = 80
) -> Workload:
    """An efficient built-in simple-app client: ``connections`` concurrent curl-like loops.

    Each loop fetches ``http://SERVICE/small-file.txt`` on a new connection and, with ``hold`` > 0,
    keeps it open that many seconds first, to fill the conntrack table. ``rate`` > 0 caps new
    connections per second (per pod); 0 is as fast as it goes (one pod makes about 10,000/s here).
    Failures are logged in curl's words (``curl: (56) Recv failure: Connection reset by peer``).
    """
    numbers.whole("connections", connections, 1)
    numbers.non_negative("hold", hold)
    numbers.non_negative("rate", rate)
    _port(port)
    settings = {"service": service, "connections": connections, "hold": hold, "rate": rate, "port": port}
    return Workload("simple-app-client", settings=settings)


def boom_server(*, offset: int = 100_000, port: int = 9000, close_after: float = 10.0) -> Workload:
    """Upstream's regression-issue-74839 server: forges an out-of-window PSH|ACK ``boom!!!``.

    ``offset`` is how far below the server's next sequence number the forged segment lies.
    Like anfernee/k8s-issue-74839, it exits when a RST reaches port 9000 (→ CrashLoopBackOff).
    """
    if isinstance(offset, bool) or not isinstance(offset, int):  # any int: it wraps mod 2^32
        raise ValueError(f"offset must be an integer, got {offset!r}")
    numbers.non_negative("close_after", close_after)
    _port(port)
    return Workload("boom-server", settings={"offset": offset, "port": port, "close_after": close_after})


def nc_loop(service: str, *, port: int = 9000, every: float = 2.0) -> Workload:
    """Upstream's client: ``while true; do sleep 2; nc boom-server 9000& done``."""
    numbers.positive("every", every)
    _port(port)
    return Workload("nc-loop", settings={"service": service, "port": port, "every": every})


def udp_fill(node: str, *, count: int) -> Workload:
    """Make ``count`` conntrack entries fast: one UDP datagram each, to distinct ports of ``node``'s
    address, from a pod (the entries are on every node the datagrams cross). Logs ``filled N``
    when done, then stays up. Raise ``nf_conntrack_udp_timeout`` to keep the entries."""
    numbers.whole("count", count, 1)
    return Workload("udp-fill", settings={"node": node, "count": count})
