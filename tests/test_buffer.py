"""The read buffer starts on a page boundary and is private to its process (fastsock/buffer.py)."""

from __future__ import annotations

import ctypes
import mmap
import os
import socket

import pytest

from fastsock.address import unix_endpoint
from fastsock.buffer import page_aligned_buffer
from fastsock.server import Server, ServerConfig


def _address(buf: object) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(buf))  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [1, 4096, 65536, 256 * 1024, 1 << 20])
def test_buffer_is_page_aligned_zeroed_and_writable(size):
    buf = page_aligned_buffer(size)
    assert len(buf) == size
    assert _address(buf) % mmap.PAGESIZE == 0
    assert buf[:16] == bytes(16)[: min(16, size)]
    buf[size - 1] = 7
    assert buf[size - 1] == 7


@pytest.mark.timeout(10)
def test_server_reads_into_a_page_aligned_buffer(tmp_path):
    # A bytearray of the default 256 KiB starts 16 bytes into a page (glibc's mmap header):
    # the case that made the kernel's copy slow. The server must not use one.
    server = Server(ServerConfig(endpoint=unix_endpoint(str(tmp_path / "b.sock"))))
    try:
        assert _address(server.context.read_buffer) % mmap.PAGESIZE == 0
        assert len(server.context.read_buffer) == server.config.read_size
    finally:
        server.shutdown_threadsafe()  # due at once: run() returns after one pass
        server.run()


def test_a_forked_child_writes_its_own_copy():
    buf = page_aligned_buffer(4096)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        buf[0] = 1
        os._exit(0 if buf[0] == 1 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert buf[0] == 0


def test_an_empty_buffer_is_refused():
    with pytest.raises(ValueError, match="buffer size"):
        page_aligned_buffer(0)


@pytest.mark.timeout(10)
def test_uring_connections_read_into_page_aligned_buffers_of_read_size(tmp_path):
    # The io_uring engine's pool buffers are --read-size each in one mapping; a bytearray of
    # 256 KiB would start 16 bytes into a page, as above (measured: the 1 MiB echo cost 1.4x
    # the server CPU).
    from tests.conftest import uring_unavailable

    if uring_unavailable() is not None:
        pytest.skip(str(uring_unavailable()))
    from fastsock.uring.server import UringServer

    config = ServerConfig(endpoint=unix_endpoint(str(tmp_path / "u.sock")), uring_pool="16M")
    server = UringServer(config)
    a, b = socket.socketpair()
    try:
        server._start_connection(a)
        (conn,) = server.connections
        assert conn._small is None  # no buffer of its own until it echoes a small message
        assert server.pool.base % mmap.PAGESIZE == 0
        assert server.pool.size == server.config.read_size == 256 * 1024
        assert server.pool.count == 64
    finally:
        b.close()
        server.shutdown()  # no connection has bytes owed: run() returns at once
        server.run()
