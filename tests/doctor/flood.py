"""Fill a lab node's conntrack table with real connections, then keep asking for more.

Run inside the node's namespace: ``ip netns exec crlab-node-1 python3 tests/doctor/flood.py``.
It connects to a listener on 127.0.0.1 of its own, as fast as it can, each connection closed at
once (its entry stays for TIME_WAIT). It prints ``full`` when a connect first times out (the
table refuses new flows: their SYN is dropped) and goes on until it is terminated.
"""

from __future__ import annotations

import socket
import sys
import threading


def main() -> None:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(4096)
    port = server.getsockname()[1]

    def accept() -> None:
        while True:
            conn, _ = server.accept()
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    said = False
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.05).close()
        except OSError:
            if not said:
                print("full", flush=True)
                said = True


if __name__ == "__main__":
    sys.exit(main())
