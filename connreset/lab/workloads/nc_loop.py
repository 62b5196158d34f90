"""Upstream's boom-server client: ``while true; do sleep 2; nc boom-server 9000& done``.

Every EVERY seconds it opens a connection to HOST:PORT in the background and reads until the
server closes it. Errors are logged as BusyBox nc words them.

Usage: nc_loop.py HOST PORT EVERY
"""

import socket
import sys
import threading
import time


def log(msg: str) -> None:
    print(msg, flush=True)


def one(host: str, port: int) -> None:
    try:
        with socket.create_connection((host, port), timeout=30) as s:
            while s.recv(4096):
                pass
    except ConnectionResetError:
        log("nc: read: Connection reset by peer")
    except OSError as exc:
        log(f"nc: can't connect to remote host ({host}): {exc.strerror or exc}")


def main() -> int:
    host, port, every = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    while True:
        time.sleep(every)
        threading.Thread(target=one, args=(host, port), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
