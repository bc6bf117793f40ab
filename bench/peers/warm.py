"""Bring a freshly started echo server to its steady state before the harness measures it.

A load run's own ``--warmup`` warms the connections of that run, but some servers carry state
that only changes when a connection *ends*. The asyncio Protocol peer is one (measured, issue 11):
asyncio reads with ``sock.recv(256 KiB)``, which glibc serves with mmap while its mmap threshold
is still the initial 128 KiB; CPython then shrinks the bytes object (mremap to a page) and frees
it, and freeing a one-page mapping never raises the threshold. So every read of the server's
first connections costs mmap + mremap + munmap (strace: one of each per message) and the first
load run against a fresh asyncio server ran 4-5x slower than every later one, whatever the
engine. The first end of file frees an untouched 256 KiB buffer; glibc then raises its threshold
to that size and later reads come from the heap. So the warm-up here runs whole connection
lifetimes: open, echo, close, and a last round trip on a new connection, which the server answers
only after its event loop has taken the earlier closes (they were ready first).
"""

from __future__ import annotations

import socket

from fastsock.address import Endpoint, connect

# Small on purpose: the state above does not depend on the message size, and a small message
# cannot fill the socket buffers while it is written before it is read back.
WARM_SIZE = 64


def _round_trip(sock: socket.socket, payload: bytes) -> None:
    """Send ``payload``, read it back, raise ``RuntimeError`` if the echo differs."""
    sock.sendall(payload)
    got = bytearray()
    while len(got) < len(payload):
        chunk = sock.recv(len(payload) - len(got))
        if not chunk:
            raise RuntimeError("warm-up: the server closed the connection mid-echo")
        got += chunk
    if got != payload:
        raise RuntimeError("warm-up: the server echoed other bytes than it was sent")


def warm_up(endpoint: Endpoint, conns: int = 4, messages: int = 8, timeout: float = 10.0) -> None:
    """Echo ``messages`` messages on each of ``conns`` connections, close them, then one round
    trip on a new connection. Raises ``OSError`` (unreachable, timeout) or ``RuntimeError``
    (a wrong echo): the caller's measurement would be wrong too."""
    payload = bytes(range(WARM_SIZE))
    socks = []
    try:
        for _ in range(conns):
            socks.append(connect(endpoint, timeout))
        for _ in range(messages):
            for sock in socks:
                _round_trip(sock, payload)
    finally:
        for sock in socks:
            sock.close()
    with connect(endpoint, timeout) as sock:
        _round_trip(sock, payload)
