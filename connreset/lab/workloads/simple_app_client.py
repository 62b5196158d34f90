"""The blog's simple-app client, made efficient: CONNECTIONS concurrent curl-like loops.

Each loop opens a new connection to HOST:PORT, keeps it open HOLD seconds (to fill conntrack),
sends ``GET /small-file.txt`` and reads the whole reply. Failures are logged in curl's words, as
``curl -sS`` would print them, so log assertions read as they would on a real cluster. Every 5 s
it prints a tally line: ``simple-app: ok=N failed=M``.

Usage: simple_app_client.py HOST PORT CONNECTIONS HOLD
"""

import asyncio
import sys
import time

CONNECT_TIMEOUT = 5.0


def log(msg: str) -> None:
    print(msg, flush=True)


async def fetch(host: str, port: int, hold: float, tally: dict[str, int]) -> None:
    start = time.monotonic()

    def ms() -> int:
        return int((time.monotonic() - start) * 1000)

    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT)
    except TimeoutError:
        log(f"curl: (28) Failed to connect to {host} port {port} after {ms()} ms: Timeout was reached")
        tally["failed"] += 1
        return
    except ConnectionRefusedError:
        log(f"curl: (7) Failed to connect to {host} port {port} after {ms()} ms: Couldn't connect to server")
        tally["failed"] += 1
        await asyncio.sleep(0.2)
        return
    except OSError as exc:
        log(f"curl: (7) Failed to connect to {host} port {port} after {ms()} ms: {exc.strerror}")
        tally["failed"] += 1
        await asyncio.sleep(0.2)
        return
    try:
        if hold:
            await asyncio.sleep(hold)
        writer.write(
            f"GET /small-file.txt HTTP/1.1\r\nHost: {host}\r\nUser-Agent: curl/8\r\n"
            "Accept: */*\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        got = 0
        while got < length:
            chunk = await reader.read(65536)
            if not chunk:
                log(f"curl: (18) transfer closed with {length - got} bytes remaining to read")
                tally["failed"] += 1
                return
            got += len(chunk)
        tally["ok"] += 1
    except ConnectionResetError:
        log("curl: (56) Recv failure: Connection reset by peer")
        tally["failed"] += 1
    except asyncio.IncompleteReadError:
        log("curl: (52) Empty reply from server")
        tally["failed"] += 1
    finally:
        writer.close()


async def loop(host: str, port: int, hold: float, tally: dict[str, int]) -> None:
    while True:
        await fetch(host, port, hold, tally)


async def report(tally: dict[str, int]) -> None:
    while True:
        await asyncio.sleep(5)
        log(f"simple-app: ok={tally['ok']} failed={tally['failed']}")


async def main() -> None:
    host, port, n, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    tally = {"ok": 0, "failed": 0}
    await asyncio.gather(report(tally), *(loop(host, port, hold, tally) for _ in range(n)))


if __name__ == "__main__":
    asyncio.run(main())
