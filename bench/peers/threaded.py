"""Peer: a thread per connection with blocking sockets (``socketserver.Threading*Server``).

The pre-async answer: each connection gets a thread that loops ``recv_into`` a buffer of its
own and ``sendall`` of what came in. Simple, and a fair reference for few connections.
"""

from __future__ import annotations

import signal
import socket
import socketserver
import threading

import click

from bench.peers.common import READ_SIZE, announce, listening, server_options, set_nodelay
from fastsock.address import Endpoint


class EchoHandler(socketserver.BaseRequestHandler):
    """Blocking echo: one preallocated buffer per connection, no allocation per message."""

    def setup(self) -> None:
        set_nodelay(self.request)

    def handle(self) -> None:
        sock: socket.socket = self.request
        buf = bytearray(READ_SIZE)
        view = memoryview(buf)
        try:
            while n := sock.recv_into(buf):
                sock.sendall(view[:n])
        except ConnectionError:
            pass  # reset by the client: the connection is over either way


class DiscardHandler(EchoHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        buf = bytearray(READ_SIZE)
        try:
            while sock.recv_into(buf):
                pass
        except ConnectionError:
            pass


HANDLERS: dict[str, type[socketserver.BaseRequestHandler]] = {
    "echo": EchoHandler,
    "discard": DiscardHandler,
}


def make_server(sock: socket.socket, endpoint: Endpoint, mode: str) -> socketserver.ThreadingMixIn:
    """A stock threading server around our already listening ``sock``.

    socketserver would bind its own socket; we hand it the one fastsock.address made so that
    stale-socket handling, abstract names and error messages are the same for every peer.
    """
    if endpoint.is_unix:
        cls: type = socketserver.ThreadingUnixStreamServer
    else:
        cls = socketserver.ThreadingTCPServer
    server = cls(endpoint.sockaddr, HANDLERS[mode], bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    server.server_address = sock.getsockname()
    # Blocking like a stock socketserver listener (serve_forever selects before accepting).
    sock.setblocking(True)
    server.daemon_threads = True  # connection threads must not keep the process alive on exit
    server.block_on_close = False
    return server


@click.command()
@server_options
def main(host: str, port: int | None, unix: str | None, mode: str) -> None:
    """Thread-per-connection echo/discard server (a fastsock peer)."""
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    # Block the signals before any thread starts (threads inherit the mask), then wait for them
    # in the main thread: shutdown() runs outside a signal handler, so it cannot deadlock.
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    with listening(host, port, unix) as (sock, endpoint):
        server = make_server(sock, endpoint, mode)
        acceptor = threading.Thread(target=server.serve_forever, name="accept", daemon=True)
        acceptor.start()
        announce("threaded", endpoint)
        signal.sigwait(stop_signals)
        server.shutdown()
        acceptor.join(timeout=5)


if __name__ == "__main__":
    main()
