"""The blog's simple-app client, made efficient: CONNECTIONS concurrent curl-like loops.

Each loop opens a new connection to HOST:PORT, keeps it open HOLD seconds (to fill conntrack),
sends ``GET /small-file.txt`` and reads the whole reply, then starts again. One epoll loop over
non-blocking sockets drives every loop, so a pod makes thousands of new connections a second.
Every failure is classified as curl classifies it, with curl's exit code and words, so log
assertions read as they would on a real cluster:

- ``curl: (7) Failed to connect ...``: refused (or unreachable);
- ``curl: (28) Failed to connect ... Timeout was reached``: no answer to the SYN within 5 s;
- ``curl: (52) Empty reply from server``: closed before any byte of a reply;
- ``curl: (55) Send failure: Connection reset by peer``: reset while sending the request;
- ``curl: (56) Recv failure: Connection reset by peer``: reset while reading the reply (any
  other receive error keeps its own words: a timeout is never called a reset);
- ``curl: (18) transfer closed with N bytes remaining to read``: a partial reply.

Every second it prints a tally of that second, ``simple-app: ok=N failed=M``.

With RATE > 0, new connections start at most RATE times a second (per pod), like a curl loop
that sleeps; 0 means as fast as the loops go.

Usage: simple_app_client.py HOST PORT CONNECTIONS HOLD [RATE]
"""

import errno
import heapq
import select
import socket
import sys
import time

CONNECT_TIMEOUT = 5.0
REPORT_EVERY = 1.0  # seconds between tally lines (each counts its own second)
RETRY_AFTER = 0.2  # after a refused connection, so a missing Service is not a busy loop
CONNECTING, HOLDING, READING = 0, 1, 2


def log(msg: str) -> None:
    print(msg, flush=True)


class Loop:
    def __init__(self, host: str, port: int, hold: float, rate: float = 0.0) -> None:
        self.host, self.port, self.hold = host, port, hold
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_start = time.monotonic()
        self.request = (
            f"GET /small-file.txt HTTP/1.1\r\nHost: {host}\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n"
        ).encode()
        self.ep = select.epoll()
        self.socks: dict[int, socket.socket] = {}
        self.state: dict[int, int] = {}
        self.started: dict[int, float] = {}
        self.buf: dict[int, bytes] = {}
        self.need: dict[int, int] = {}
        self.timers: list[tuple[float, int]] = []  # (when, fd); fd -1 = start a new loop
        self.ok = self.failed = 0

    def ms(self, fd: int) -> int:
        return int((time.monotonic() - self.started[fd]) * 1000)

    def again(self) -> None:
        """Start the next connection now, or at the next slot the rate allows."""
        if not self.interval:
            self.start()
            return
        now = time.monotonic()
        self.next_start = max(self.next_start + self.interval, now)
        heapq.heappush(self.timers, (self.next_start, -1))

    def start(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        fd = s.fileno()
        self.socks[fd], self.state[fd], self.started[fd] = s, CONNECTING, time.monotonic()
        self.buf[fd], self.need[fd] = b"", -1
        code = s.connect_ex((self.host, self.port))
        if code not in (0, errno.EINPROGRESS):
            self.fail(
                fd,
                f"curl: (7) Failed to connect to {self.host} port {self.port} after 0 ms: "
                f"{errno.errorcode.get(code, code)}",
                retry=True,
                registered=False,
            )
            return
        self.ep.register(fd, select.EPOLLOUT)

    def done(self, fd: int, *, registered: bool = True) -> None:
        if registered:
            self.ep.unregister(fd)
        self.socks.pop(fd).close()
        for table in (self.state, self.started, self.buf, self.need):
            table.pop(fd, None)

    def fail(self, fd: int, message: str, *, retry: bool = False, registered: bool = True) -> None:
        log(message)
        self.failed += 1
        self.done(fd, registered=registered)
        if retry:
            heapq.heappush(self.timers, (time.monotonic() + RETRY_AFTER, -1))
        else:
            self.again()

    def send(self, fd: int) -> None:
        try:
            self.socks[fd].send(self.request)
        except (ConnectionResetError, BrokenPipeError):
            self.fail(fd, "curl: (55) Send failure: Connection reset by peer")
            return
        except OSError as exc:
            self.fail(fd, f"curl: (55) Send failure: {exc.strerror}")
            return
        self.state[fd] = READING
        self.ep.modify(fd, select.EPOLLIN)

    def on_event(self, fd: int) -> None:
        s, state = self.socks[fd], self.state[fd]
        if state == CONNECTING:
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err == errno.ETIMEDOUT:
                self.fail(
                    fd,
                    f"curl: (28) Failed to connect to {self.host} port {self.port} after "
                    f"{self.ms(fd)} ms: Timeout was reached",
                )
            elif err:
                self.fail(
                    fd,
                    f"curl: (7) Failed to connect to {self.host} port {self.port} after "
                    f"{self.ms(fd)} ms: Couldn't connect to server",
                    retry=True,
                )
            elif self.hold > 0:
                self.state[fd] = HOLDING
                self.ep.modify(fd, 0)
                heapq.heappush(self.timers, (time.monotonic() + self.hold, fd))
            else:
                self.send(fd)
            return
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            self.fail(fd, "curl: (56) Recv failure: Connection reset by peer")
            return
        except BlockingIOError:
            return
        except OSError as exc:  # e.g. ETIMEDOUT: curl's words are the kernel's, never "reset"
            self.fail(fd, f"curl: (56) Recv failure: {exc.strerror}")
            return
        if data:
            self.buf[fd] += data
            if self.need[fd] < 0 and b"\r\n\r\n" in self.buf[fd]:
                head, _, _ = self.buf[fd].partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                self.need[fd] = len(head) + 4 + length
            if 0 <= self.need[fd] <= len(self.buf[fd]):
                self.ok += 1
                self.done(fd)
                self.again()
            elif len(self.buf[fd]) > 1 << 16:  # keep the count, not the bytes, of big bodies
                self.need[fd] -= len(self.buf[fd])
                self.buf[fd] = b""
            return
        if self.need[fd] < 0:
            self.fail(fd, "curl: (52) Empty reply from server")
        else:
            left = self.need[fd] - len(self.buf[fd])
            self.fail(fd, f"curl: (18) transfer closed with {left} bytes remaining to read")

    def run(self, connections: int) -> None:
        for _ in range(connections):
            self.start()
        report = time.monotonic() + REPORT_EVERY
        sweep = time.monotonic() + 0.1
        while True:
            now = time.monotonic()
            wait = min(report, sweep, self.timers[0][0] if self.timers else report) - now
            for fd, _ in self.ep.poll(max(wait, 0)):
                if fd in self.socks:
                    self.on_event(fd)
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                _, fd = heapq.heappop(self.timers)
                if fd == -1:
                    self.start()
                elif self.state.get(fd) == HOLDING:
                    self.send(fd)
            if now >= sweep:
                sweep = now + 0.1
                for fd in [
                    f
                    for f, st in self.state.items()
                    if st == CONNECTING and now - self.started[f] >= CONNECT_TIMEOUT
                ]:
                    self.fail(
                        fd,
                        f"curl: (28) Failed to connect to {self.host} port {self.port} after "
                        f"{self.ms(fd)} ms: Timeout was reached",
                    )
            if now >= report:
                report = now + REPORT_EVERY
                log(f"simple-app: ok={self.ok} failed={self.failed}")
                self.ok = self.failed = 0


def main() -> int:
    host, port, n, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    rate = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    Loop(host, port, hold, rate).run(n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
