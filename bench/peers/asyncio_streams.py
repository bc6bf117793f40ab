"""Peer: an asyncio streams echo server (``reader.read(65536)`` -> ``writer.write`` + ``drain``).

The way most asyncio code is written: one coroutine per connection over StreamReader/Writer.
"""

from __future__ import annotations

import asyncio
import signal
import socket

import click

from bench.peers.common import READ_SIZE, announce, listening, server_options, set_nodelay
from fastsock.address import Endpoint


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    set_nodelay(writer.get_extra_info("socket"))
    try:
        while data := await reader.read(READ_SIZE):
            writer.write(data)
            await writer.drain()  # waits only above the transport's high-water mark
    except ConnectionError:
        pass  # the client went away mid-message: nothing to answer
    finally:
        writer.close()


async def discard(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    set_nodelay(writer.get_extra_info("socket"))
    try:
        while await reader.read(READ_SIZE):
            pass
    except ConnectionError:
        pass
    finally:
        writer.close()


HANDLERS = {"echo": echo, "discard": discard}


async def serve(sock: socket.socket, endpoint: Endpoint, mode: str) -> None:
    """Serve on the listening ``sock`` until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    handler = HANDLERS[mode]
    if endpoint.is_unix:
        server = await asyncio.start_unix_server(handler, sock=sock)
    else:
        server = await asyncio.start_server(handler, sock=sock)
    announce("asyncio-streams", endpoint)
    await stop.wait()
    server.close()


@click.command()
@server_options
def main(host: str, port: int | None, unix: str | None, mode: str) -> None:
    """asyncio streams echo/discard server (a fastsock peer)."""
    with listening(host, port, unix) as (sock, endpoint):
        asyncio.run(serve(sock, endpoint, mode))


if __name__ == "__main__":
    main()
