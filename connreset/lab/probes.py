"""kubelet's liveness probes in the lab, sent from the node's own network namespace.

A probe opens its socket in the node's namespace (not the pod's), as kubelet does on a real node,
so it passes through the node's conntrack table: a full table drops the probe's SYN and the probe
times out. One thread per node enters the node's namespace once (``setns``) and makes the probes'
sockets there; the connections themselves run on the controller's event loop.

Time: the probe's period and initial delay are multiplied by the lab's ``time_scale``, like
kubelet's back-off. Its timeout is not: it races the kernel's own timers (a lost SYN is sent
again after 1 s) and the machine's load, which no scale shortens. In a slow guest (TCG) the
timeout, the period and the initial delay are stretched by the guest's measured slowness
(:mod:`connreset.guest.timing`), as every other wait is: a pod that starts and answers in 0.2 s
on the host takes seconds there, and the probe would kill it before it ever listens. On the host
they are as written.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
from concurrent.futures import ThreadPoolExecutor

from connreset.guest.timing import scaled
from connreset.testbed.probes import Liveness

CLONE_NEWNET = 0x40000000
BODY_LIMIT = 10 * 1024  # kubelet reads at most this much of an HTTP probe's reply


def _enter(ns: str) -> None:
    """Move the calling thread (only it) into the network namespace ``ns``."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {ns}: {os.strerror(err)}")
    finally:
        os.close(fd)


def _socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    return s


class NodeProber:
    """Probes from one node: sockets made in its namespace by a thread that lives there."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self._pool = ThreadPoolExecutor(
            1, thread_name_prefix=f"probe-{ns}", initializer=_enter, initargs=(ns,)
        )

    async def probe(self, liveness: Liveness, ip: str) -> str | None:
        """Probe once; None when it passed, else why it failed (kubelet's words, roughly)."""
        loop = asyncio.get_running_loop()
        try:
            sock = await loop.run_in_executor(self._pool, _socket)
        except Exception as exc:  # the thread could not enter the namespace
            return f"cannot probe from {self.ns}: {exc}"
        target = f"{ip}:{liveness.port}"
        try:
            async with asyncio.timeout(scaled(liveness.timeout)):
                await loop.sock_connect(sock, (ip, liveness.port))
                if liveness.kind == "tcp":
                    return None
                return await _http(loop, sock, ip, liveness)
        except TimeoutError:
            what = "dial tcp" if liveness.kind == "tcp" else "Get"
            return f"{what} {target}: i/o timeout (after {liveness.timeout}s)"
        except OSError as exc:
            return f"dial tcp {target}: {exc.strerror or exc}"
        finally:
            sock.close()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


async def _http(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, ip: str, liveness: Liveness
) -> str | None:
    request = (
        f"GET {liveness.path} HTTP/1.1\r\nHost: {ip}:{liveness.port}\r\n"
        "User-Agent: kube-probe/1.31\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    got = b""
    while b"\r\n" not in got and len(got) < BODY_LIMIT:
        chunk = await loop.sock_recv(sock, BODY_LIMIT)
        if not chunk:
            break
        got += chunk
    status = got.split(b"\r\n", 1)[0].split()
    if len(status) < 2 or not status[1].isdigit():
        return f"Get http://{ip}:{liveness.port}{liveness.path}: no HTTP status line"
    code = int(status[1])
    return None if 200 <= code < 400 else f"HTTP probe failed with statuscode: {code}"
