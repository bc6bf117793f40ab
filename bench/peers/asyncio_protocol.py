"""Peer: an asyncio Protocol echo server (``data_received`` -> ``transport.write``).

The textbook asyncio server. ``--loop uvloop`` runs the very same Protocol on uvloop, so the two
differ only in the event loop underneath; ``uvloop_protocol.py`` is that, under its own name.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Callable

import click

from bench.peers.common import announce, listening, server_options, set_nodelay
from fastsock.address import Endpoint


class EchoProtocol(asyncio.Protocol):
    """Write back every chunk as it arrives; stop reading while the peer does not read."""

    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        set_nodelay(transport.get_extra_info("socket"))

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    # Flow control: without it a client that writes but does not read makes the server buffer
    # without bound. The transport calls these at its high/low water marks.
    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()


class DiscardProtocol(asyncio.Protocol):
    """Read and drop."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        set_nodelay(transport.get_extra_info("socket"))

    def data_received(self, data: bytes) -> None:
        pass


PROTOCOLS: dict[str, type[asyncio.Protocol]] = {"echo": EchoProtocol, "discard": DiscardProtocol}


async def serve(name: str, sock: socket.socket, endpoint: Endpoint, mode: str) -> None:
    """Serve on the listening ``sock`` until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    factory = PROTOCOLS[mode]
    if sock.family == socket.AF_UNIX:
        server = await loop.create_unix_server(factory, sock=sock)
    else:
        server = await loop.create_server(factory, sock=sock)
    announce(name, endpoint)
    await stop.wait()
    server.close()


def loop_factory(loop: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """The event loop constructor for ``--loop``; a one-line error if uvloop is missing."""
    if loop == "asyncio":
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError:
        raise click.ClickException("uvloop is not installed (pip install uvloop)") from None
    return uvloop.new_event_loop


def run(name: str, loop: str, host: str, port: int | None, unix: str | None, mode: str) -> None:
    factory = loop_factory(loop)
    with listening(host, port, unix) as (sock, endpoint), asyncio.Runner(loop_factory=factory) as r:
        r.run(serve(name, sock, endpoint, mode))


@click.command()
@server_options
@click.option(
    "--loop", type=click.Choice(["asyncio", "uvloop"]), default="asyncio", show_default=True
)
def main(host: str, port: int | None, unix: str | None, mode: str, loop: str) -> None:
    """asyncio Protocol echo/discard server (a fastsock peer)."""
    name = "uvloop-protocol" if loop == "uvloop" else "asyncio-protocol"
    run(name, loop, host, port, unix, mode)


if __name__ == "__main__":
    main()
