"""Peer: the bare Python epoll echo loop -- the measuring stick for what fastsock's features cost.

``select.epoll`` + a dict fd -> bound method + ``recv_into`` one shared buffer + ``send`` of a
memoryview, and nothing else: no watermarks, no idle timeout, no stats, no drain, no partial-send
queue worth the name (a short send is finished with a blocking ``sendall``, which no real server
may do). It is the fastest a pure-Python readiness loop gets here; ``fastsock serve`` is measured
against it (``python -m bench.studies.server_speed``).

``--busy-us N`` (the ``busy-epoll`` peer) adds N µs of the server's own CPU time per 64 bytes
read (rounded up) before it echoes: a server with a known cost per 64 B message, slower than
either load engine, for ``bench.studies.agree_load``. Per byte, not per read: a cost per read
would make the server faster the more messages a client lets pile up per connection (measured:
the Python engine got 1.11x the native engine's msgs/s at TCP depth 8 that way). With 0 (the
default) the loop is exactly the one above.
"""

from __future__ import annotations

import select
import signal
import socket
import time
from collections.abc import Callable

import click

from bench.peers.common import announce, listening, server_options, set_nodelay

BUSY_UNIT = 64  # bytes: the message size the calibration runs use


def busy_recv_into(sock: socket.socket, busy_ns: int) -> Callable[[bytearray], int]:
    """``sock.recv_into`` that then spends ``busy_ns`` of this thread's CPU time per BUSY_UNIT
    bytes read. CPU time, not wall time: on a busy machine a preempted spin would otherwise cost
    less than it says."""
    recv_into, clock = sock.recv_into, time.thread_time_ns

    def recv(buf: bytearray) -> int:
        n = recv_into(buf)
        until = clock() + busy_ns * -(-n // BUSY_UNIT)
        while clock() < until:
            pass
        return n

    return recv


def serve(lsock: socket.socket, mode: str, busy_us: float = 0.0) -> None:
    ep = select.epoll()
    buf = bytearray(65536)
    view = memoryview(buf)
    handlers = {}

    def on_conn(sock: socket.socket) -> None:
        recv_into, send, fd = sock.recv_into, sock.send, sock.fileno()
        if busy_us:  # chosen once per connection: the loop below is the same either way
            recv_into = busy_recv_into(sock, int(busy_us * 1000))

        def on_read(events: int) -> None:
            try:
                n = recv_into(buf)
            except BlockingIOError:
                return
            except OSError:
                n = 0
            if not n:
                ep.unregister(fd)
                del handlers[fd]
                sock.close()
            elif mode == "echo":
                try:
                    sent = send(view[:n])
                except BlockingIOError:
                    sent = 0
                except OSError:
                    return  # reset: the next recv reports it and closes
                if sent < n:  # never taken at 64 B; keeps large echoes correct
                    sock.setblocking(True)
                    try:
                        sock.sendall(view[sent:n])
                    except OSError:
                        return  # reset mid-send: the next recv reports it and closes
                    finally:
                        sock.setblocking(False)

        set_nodelay(sock)
        sock.setblocking(False)
        handlers[fd] = on_read
        ep.register(fd, select.EPOLLIN)

    def on_accept(events: int) -> None:
        try:
            on_conn(lsock.accept()[0])
        except BlockingIOError:
            pass

    handlers[lsock.fileno()] = on_accept
    ep.register(lsock.fileno(), select.EPOLLIN)
    while True:
        for fd, events in ep.poll():
            handlers[fd](events)


class Stop(Exception):
    """Raised by the SIGTERM/SIGINT handler: it interrupts poll() (which PEP 475 would retry)."""


def stop(signum: int, frame: object) -> None:
    raise Stop


@click.command()
@server_options
@click.option(
    "--busy-us",
    type=click.FloatRange(0, 1_000_000),
    default=0.0,
    show_default=True,
    help="CPU time spent per 64 bytes read before the echo (a deliberately slow server).",
)
def main(host: str, port: int | None, unix: str | None, mode: str, busy_us: float) -> None:
    """Bare Python epoll echo/discard loop (a fastsock peer; no features, the speed limit)."""
    with listening(host, port, unix) as (sock, endpoint):
        sock.setblocking(False)
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        announce("busy-epoll" if busy_us else "bare-epoll", endpoint)
        try:
            serve(sock, mode, busy_us)
        except Stop:
            pass


if __name__ == "__main__":
    main()
