"""Fill conntrack tables fast: one UDP datagram per distinct flow, then stay up.

Each datagram goes to HOST from one of a few sockets (source ports) to a distinct destination
port, so that every one is a new conntrack entry on each node it crosses; with a long UDP timeout
the entries stay. Far cheaper than a socket per entry: 65,536 entries take about a second.

Usage: udp_fill.py HOST COUNT
"""

import socket
import sys
import time

PORTS = range(1024, 65535)


def main() -> int:
    host, count = sys.argv[1], int(sys.argv[2])
    sent, sockets = 0, []
    while sent < count:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sockets.append(s)  # kept open: its source port keeps naming its flows
        for port in PORTS:
            if sent >= count:
                break
            try:
                s.sendto(b"x", (host, port))
            except OSError as exc:  # e.g. ENOBUFS under a burst: count it and carry on
                print(f"send failed: {exc}", flush=True)
            sent += 1
    print(f"filled {sent}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
