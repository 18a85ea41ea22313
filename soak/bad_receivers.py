"""The soak's misbehaving webhook receivers, for one merchant: one that never answers (it
holds every connection open) and one whose answer never ends (200, then a chunked body streamed
as fast as the gateway takes it). Plain asyncio servers; on SIGTERM they print what they saw
(connections, bytes streamed) as one JSON line to SOAK_BAD_RECEIVERS_LOG."""

import argparse
import asyncio
import json
import os
import signal
from pathlib import Path

CHUNK = b"x" * 65536
FRAME = b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK)
CAP = 256 * 1024 * 1024  # per answer: keeps a gateway that read it all from taking the box down
seen = {"hanging_connections": 0, "huge_connections": 0, "huge_bytes_sent": 0}


async def read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            await reader.readexactly(int(value))


async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    seen["hanging_connections"] += 1
    try:
        await read_request(reader)
        await reader.read()  # until the gateway gives up and closes
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    seen["huge_connections"] += 1
    sent = 0
    try:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        while sent < CAP:
            writer.write(FRAME)
            await writer.drain()
            sent += len(CHUNK)
    except (OSError, asyncio.IncompleteReadError):
        pass  # the gateway hung up: as it should
    finally:
        seen["huge_bytes_sent"] += sent
        writer.close()


async def serve() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hang-port", type=int, required=True)
    parser.add_argument("--huge-port", type=int, required=True)
    args = parser.parse_args()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    servers = [
        await asyncio.start_server(hang, "127.0.0.1", args.hang_port),
        await asyncio.start_server(endless, "127.0.0.1", args.huge_port),
    ]
    await stop.wait()
    for server in servers:
        server.close()


if __name__ == "__main__":
    asyncio.run(serve())
    Path(os.environ["SOAK_BAD_RECEIVERS_LOG"]).write_text(json.dumps(seen) + "\n")
