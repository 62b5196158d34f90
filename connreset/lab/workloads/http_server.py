"""The blog's nginx: an HTTP server answering every GET with SIZE bytes, then closing.

A single-threaded epoll loop over non-blocking sockets, so that one pod keeps up with thousands of
new connections a second. Errors are logged in nginx's words, e.g.
``recv() failed (104: Connection reset by peer) while reading response header``.

Usage: http_server.py PORT SIZE
"""

import select
import socket
import sys
import time


def log(msg: str) -> None:
    print(time.strftime("%Y/%m/%d %H:%M:%S [error] ") + msg, flush=True)


def main() -> int:
    port, size = int(sys.argv[1]), int(sys.argv[2])
    reply = memoryview(
        (
            f"HTTP/1.1 200 OK\r\nServer: connreset-lab\r\nContent-Length: {size}\r\n"
            "Content-Type: text/plain\r\nConnection: close\r\n\r\n"
        ).encode()
        + b"x" * size
    )
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(4096)
    listener.setblocking(False)
    ep = select.epoll()
    ep.register(listener.fileno(), select.EPOLLIN)
    socks: dict[int, socket.socket] = {}
    inbuf: dict[int, bytes] = {}
    sent: dict[int, int] = {}
    print(f"listening on :{port}, serving {size} bytes", flush=True)

    def close(fd: int) -> None:
        ep.unregister(fd)
        socks.pop(fd).close()
        inbuf.pop(fd, None)
        sent.pop(fd, None)

    def push(fd: int) -> None:
        try:
            sent[fd] += socks[fd].send(reply[sent[fd] :])
        except BlockingIOError:
            pass
        except (ConnectionResetError, BrokenPipeError):
            log("writev() failed (104: Connection reset by peer) while sending to client")
            close(fd)
            return
        if sent[fd] >= len(reply):
            close(fd)
        else:
            ep.modify(fd, select.EPOLLOUT)

    while True:
        for fd, events in ep.poll():
            if fd == listener.fileno():
                while True:
                    try:
                        conn, _ = listener.accept()
                    except BlockingIOError:
                        break
                    conn.setblocking(False)
                    socks[conn.fileno()] = conn
                    inbuf[conn.fileno()] = b""
                    ep.register(conn.fileno(), select.EPOLLIN)
            elif fd in sent:
                push(fd)
            elif events & select.EPOLLIN:
                try:
                    data = socks[fd].recv(4096)
                except ConnectionResetError:
                    log("recv() failed (104: Connection reset by peer) while reading request header")
                    close(fd)
                    continue
                if not data:
                    close(fd)
                    continue
                inbuf[fd] += data
                if b"\r\n\r\n" in inbuf[fd]:
                    sent[fd] = 0
                    push(fd)


if __name__ == "__main__":
    sys.exit(main())
