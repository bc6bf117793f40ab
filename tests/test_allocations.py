"""The echo hot path allocates nothing that survives a message.

The server runs in a thread of this process under tracemalloc; the client reuses one
preallocated buffer. If the server kept anything per message (a bytes copy, a queue entry, a
list that grows), memory after 10,000 messages would exceed memory after 1,000 by about
9,000 x (message size + object overhead). We allow far less than one message's worth per 100.
"""

from __future__ import annotations

import gc
import threading
import tracemalloc

import pytest

from fastsock.address import connect, unix_endpoint
from fastsock.connection import ECHO_VIEW_MAX
from fastsock.server import Server, ServerConfig

MESSAGE = bytes(range(256)) * 2  # 512 B


def _echo(sock, count: int, buf: bytearray) -> None:
    view = memoryview(buf)
    for _ in range(count):
        sock.sendall(MESSAGE)
        got = 0
        while got < len(MESSAGE):
            got += sock.recv_into(view[got:], len(MESSAGE) - got)


@pytest.mark.timeout(60)
def test_echo_memory_does_not_grow_with_message_count(tmp_path):
    server = Server(ServerConfig(endpoint=unix_endpoint(str(tmp_path / "alloc.sock"))))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        sock = connect(server.endpoint, timeout=10)
        buf = bytearray(len(MESSAGE))
        _echo(sock, 500, buf)  # warm up: caches, first-time allocations
        gc.collect()
        tracemalloc.start()
        try:
            _echo(sock, 1_000, buf)
            gc.collect()
            after_1k = tracemalloc.get_traced_memory()[0]
            _echo(sock, 9_000, buf)
            gc.collect()
            after_10k = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        assert bytes(buf) == MESSAGE
        growth = after_10k - after_1k
        assert growth < 9_000 * len(MESSAGE) // 100, f"memory grew {growth} B over 9,000 messages"
        sock.close()
    finally:
        server.shutdown_threadsafe()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert server.stats.bytes_in == server.stats.bytes_out == 10_500 * len(MESSAGE)


@pytest.mark.timeout(60)
def test_echo_reuses_one_view_per_message_length_and_only_for_small_messages(tmp_path):
    """Messages of many lengths, each length twice, on one connection: every echo is intact
    (a reused view of the shared buffer shows the new bytes, never the old ones), the server
    keeps one view per length up to ECHO_VIEW_MAX and none for longer messages."""
    server = Server(ServerConfig(endpoint=unix_endpoint(str(tmp_path / "views.sock"))))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    lengths = [*range(1, 200), ECHO_VIEW_MAX, ECHO_VIEW_MAX + 1, 10_000]
    try:
        sock = connect(server.endpoint, timeout=10)
        for round_ in range(2):
            for n in lengths:
                message = bytes((i * 7 + n + round_) % 251 for i in range(n))
                sock.sendall(message)
                got = bytearray()
                while len(got) < n:
                    chunk = sock.recv(n - len(got))
                    assert chunk, f"the server closed after {len(got)} of {n} bytes"
                    got += chunk
                assert bytes(got) == message, f"round {round_}, {n} B: bytes differ"
        sock.close()
    finally:
        server.shutdown_threadsafe()
        thread.join(timeout=10)
    assert not thread.is_alive()
    views = server.context.echo_views
    # A read may return less than was sent (the kernel's choice): count the lengths seen.
    cached = {n for n, view in enumerate(views) if view is not None}
    assert cached, "no view was kept"
    assert max(cached) <= ECHO_VIEW_MAX
    assert all(len(views[n]) == n for n in cached)  # type: ignore[arg-type]
    assert len(views) == ECHO_VIEW_MAX + 1
