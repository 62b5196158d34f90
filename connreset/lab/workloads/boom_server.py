"""The boom-server of kubernetes test/images/regression-issue-74839, for the lab.

It listens on PORT and closes each accepted connection after CLOSE_AFTER seconds. A raw socket
watches TCP segments to PORT: on a SYN it remembers the client's ISN + 1; on the handshake's final
ACK it logs ``connection established`` and forges a PSH|ACK ``boom!!!`` back to the client, with
``seq = (the ACK's ack number) + OFFSET``. Upstream's shape is OFFSET = -100000 ("out-of-window");
the sign is a parameter because kernels differ in which side of the window they still call
INVALID. When a RST reaches PORT it logs ``ERROR: RST received`` and exits 1, as the original
(anfernee/k8s-issue-74839) panics, so the pod goes CrashLoopBackOff.

Usage: boom_server.py PORT OFFSET CLOSE_AFTER   (POD_IP from the environment)
"""

import os
import select
import socket
import struct
import sys
import time

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def log(msg: str) -> None:
    print(time.strftime("%Y/%m/%d %H:%M:%S ") + msg, flush=True)


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


def forge(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, window: int) -> bytes:
    payload = b"boom!!!"
    header = struct.pack("!HHIIHHHH", sport, dport, seq, ack, (5 << 12) | PSH | ACK, window, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(header) + len(payload))
    csum = checksum(pseudo + header + payload)
    return header[:16] + struct.pack("!H", csum) + header[18:] + payload


def main() -> int:
    port, offset, close_after = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    pod_ip = socket.inet_aton(os.environ["POD_IP"])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(512)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    log(f"listening on :{port}, forging seq offset {offset}")
    isn: dict[tuple[bytes, int], int] = {}
    conns: list[tuple[float, socket.socket]] = []
    while True:
        timeout = max(0.0, conns[0][0] - time.monotonic()) if conns else None
        ready, _, _ = select.select([listener, raw], [], [], timeout)
        now = time.monotonic()
        while conns and conns[0][0] <= now:
            conns.pop(0)[1].close()
        if listener in ready:
            conn, _ = listener.accept()
            conns.append((now + close_after, conn))
        if raw not in ready:
            continue
        pkt = raw.recv(65535)
        ihl = (pkt[0] & 0x0F) * 4
        src, dst = pkt[12:16], pkt[16:20]
        sport, dport, seq, ack, off_flags, window = struct.unpack("!HHIIHH", pkt[ihl : ihl + 16])
        if dst != pod_ip or dport != port:
            continue
        flags = off_flags & 0x1FF
        payload_len = len(pkt) - ihl - (off_flags >> 12) * 4
        if flags & RST:
            log("ERROR: RST received")
            return 1
        if flags & SYN and not flags & ACK:
            isn[(src, sport)] = (seq + 1) & 0xFFFFFFFF
        elif flags & ACK and not flags & SYN and payload_len == 0 and (src, sport) in isn:
            log("connection established")
            client_ack = isn.pop((src, sport))
            boom = forge(pod_ip, src, port, sport, (ack + offset) & 0xFFFFFFFF, client_ack, window)
            raw.sendto(boom, (socket.inet_ntoa(src), 0))
            log("boom packet injected")


if __name__ == "__main__":
    sys.exit(main())
