"""The lab's simple-app client classifies every failure as curl does (its exit code and words),
against real servers on loopback: no root needed."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from connreset.lab.workloads import HERE

Handler = Callable[[socket.socket], None]


@contextmanager
def server(handle: Handler) -> Iterator[int]:
    """A loopback server running ``handle`` on every connection; yields its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                handle(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()


def first_failure(port: int) -> str:
    """Run the client (one loop) until it logs its first ``curl:`` line; return that line."""
    proc = subprocess.Popen(
        [sys.executable, "-S", "-u", str(HERE / "simple_app_client.py"), "127.0.0.1", str(port), "1", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("curl:"):
                return line.strip()
        raise AssertionError("the client ended without a failure line")
    finally:
        proc.kill()
        proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _empty(conn: socket.socket) -> None:
    conn.recv(4096)


def _partial(conn: socket.socket) -> None:
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)


def _reset(conn: socket.socket) -> None:
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close → RST


@pytest.mark.parametrize(
    ("handle", "line"),
    [
        (_empty, "curl: (52) Empty reply from server"),
        (_partial, "curl: (18) transfer closed with 990 bytes remaining to read"),
        (_reset, "curl: (56) Recv failure: Connection reset by peer"),
    ],
    ids=["empty-reply", "partial", "recv-reset"],
)
def test_failures_carry_curls_code_and_words(handle: Handler, line: str) -> None:
    with server(handle) as port:
        assert first_failure(port) == line


def test_nobody_listening_is_refused_not_a_timeout_or_a_reset() -> None:
    assert first_failure(free_port()).startswith("curl: (7) Failed to connect to 127.0.0.1 port ")
