"""The blog's nginx: an HTTP server answering every GET with SIZE bytes, then closing.

Errors are logged in nginx's words, e.g. ``recv() failed (104: Connection reset by peer)``.

Usage: http_server.py PORT SIZE
"""

import asyncio
import sys
import time


def log(msg: str) -> None:
    print(time.strftime("%Y/%m/%d %H:%M:%S [error] ") + msg, flush=True)


async def main() -> None:
    port, size = int(sys.argv[1]), int(sys.argv[2])
    body = b"x" * size
    head = (
        f"HTTP/1.1 200 OK\r\nServer: connreset-lab\r\nContent-Length: {size}\r\n"
        "Content-Type: text/plain\r\nConnection: close\r\n\r\n"
    ).encode()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(head)
            writer.write(body)
            await writer.drain()
        except ConnectionResetError:
            log("recv() failed (104: Connection reset by peer) while reading response header")
        except (asyncio.IncompleteReadError, BrokenPipeError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "0.0.0.0", port, backlog=4096)
    print(f"listening on :{port}, serving {size} bytes", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
