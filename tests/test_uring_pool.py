"""--engine uring's shared receive pool (fastsock/uring/pool.py): the option and its errors, the
start-up check, and buffers that are recycled and never owned twice -- many connections echo
distinct patterns with every byte verified, through a pool so small that it runs dry."""

from __future__ import annotations

import re
import socket
import sys

import pytest
from click.testing import CliRunner

from fastsock.cli import main
from fastsock.load import run_load
from fastsock.process import ServerProcess
from fastsock.uring import pool as pool_module
from fastsock.uring.connection import SMALL_AFTER, SMALL_ECHO
from fastsock.uring.pool import PoolError, PoolSpec, parse_pool
from tests.conftest import echo, uring_unavailable
from tests.load.conftest import quick_config
from tests.test_startup_errors import assert_one_line_error, run_serve

K = 1024


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("16M", PoolSpec(64, 256 * K)),  # cut into --read-size buffers
        ("1000K", PoolSpec(3, 256 * K)),  # whole buffers only
        ("256x64K", PoolSpec(256, 64 * K)),
        ("4 x 4096", PoolSpec(4, 4096)),
        ("32768x1", PoolSpec(32768, 1)),
    ],
)
def test_pool_sizes(text, spec):
    assert parse_pool(text, 256 * K) == spec


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("lots", "not a number of bytes"),
        ("off", "per-connection buffers were removed"),  # one data path: the pool
        ("OFF", "per-connection buffers were removed"),
        ("0", "smaller than one --read-size buffer"),
        ("4xlots", "not a number of bytes"),
        ("64K", "smaller than one --read-size buffer"),
        ("0x4K", "1 to 32768 buffers"),
        ("40000x1K", "1 to 32768 buffers"),
        ("4x0", "1 byte to 1 GiB"),
        ("2x2G", "1 byte to 1 GiB"),
    ],
)
def test_bad_pool_sizes(text, fragment):
    with pytest.raises(PoolError, match=re.escape(fragment)):
        parse_pool(text, 256 * K)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("pool", "fragment"),
    [("64K", "smaller than one --read-size buffer"), ("off", "buffers were removed")],
)
def test_a_bad_pool_is_a_usage_error(pool, fragment):
    assert_one_line_error(
        run_serve("--port", "0", "--engine", "uring", "--uring-pool", pool), fragment
    )


def _skip_without_uring() -> None:
    reason = uring_unavailable()
    if reason is not None:
        pytest.skip(reason)


@pytest.mark.timeout(30)
def test_a_kernel_without_buffer_rings_is_one_line_and_exit_2(monkeypatch):
    _skip_without_uring()
    # An opcode the kernel does not know stands for a kernel older than 5.19 (EINVAL).
    monkeypatch.setattr(pool_module.abi, "IORING_REGISTER_PBUF_RING", 250)
    result = CliRunner().invoke(main, ["serve", "--port", "0", "--engine", "uring"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "IORING_REGISTER_PBUF_RING" in lines[0] and "5.19" in lines[0]
    assert "--engine epoll" in lines[0]


def _serve_uring(tmp_path, *args: str) -> ServerProcess:
    sock = str(tmp_path / "pool.sock")
    argv = [sys.executable, "-m", "fastsock", "serve", "--engine", "uring", "--unix", sock]
    return ServerProcess([*argv, *args])


def _stats(server: ServerProcess) -> dict[str, int]:
    server.stop()
    line = next(x for x in server.stderr_text.splitlines() if x.startswith("fastsock: stats"))
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("size", [100, 20 * K])
@pytest.mark.parametrize("pool", ["4x4K", "64x4K"])  # dry at once; grows from 16, then dry
def test_a_dry_pool_still_echoes_every_byte(tmp_path, size, pool):
    # 4 buffers of 4 KiB for 48 connections: RECVs find the pool dry (ENOBUFS) all the time,
    # and a 20 KiB message crosses several buffers. Each connection sends its own pattern and
    # the client checks every byte: a buffer given to two owners at once, or recycled while its
    # SEND was in flight, shows as a mismatch; a lost wake-up as a connection that stalls.
    # Small messages leave the pool once a connection is in small_mode (its own 1 KiB
    # buffer): they may find it dry only at the start, and a connection that did must still
    # get its RECV back although no echo SEND is left to give a buffer back and wake it.
    _skip_without_uring()
    server = _serve_uring(tmp_path, "--uring-pool", pool)
    try:
        result = run_load(quick_config(server.endpoint, size=size, conns=48, depth=2, duration=1.0))
    finally:
        stats = _stats(server)
    assert result["errors"]["total"] == 0, result["error_samples"]
    assert result["conns_alive"] == 48
    assert result["per_connection"]["min"] > 0  # nobody starved for good
    if size > SMALL_ECHO:
        assert stats["enobufs"] > 0
    assert stats["errors"] == 0 and stats["resets"] == 0
    assert stats["bytes_in"] == stats["bytes_out"] > 0


@pytest.mark.timeout(60)
def test_a_big_pool_is_never_dry(tmp_path):
    _skip_without_uring()
    server = _serve_uring(tmp_path, "--uring-pool", "64x64K")
    try:
        result = run_load(quick_config(server.endpoint, size=64, conns=8))
    finally:
        stats = _stats(server)
    assert result["errors"]["total"] == 0, result["error_samples"]
    assert stats["enobufs"] == 0


# Around the switches of the adaptive receive: small pool echoes until small_mode, then
# messages that fit the small buffer, fill it exactly (a switch back to the pool), or overflow
# it, larger ones, and small ones again (back to small_mode).
_SIZES = [64] * (SMALL_AFTER + 3) + [
    SMALL_ECHO - 1, SMALL_ECHO, 64, SMALL_ECHO + 1, 64, 64, 64, 70_000, 1, 2, 3, 64,
    3 * SMALL_ECHO, 64, 64, 64, 64, 300_000, 64, 64, 64, SMALL_ECHO, SMALL_ECHO, 5,
]  # fmt: skip


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pool", ["16M", "1x4K"])
def test_the_adaptive_receive_echoes_every_size_intact(tmp_path, pool):
    _skip_without_uring()
    server = _serve_uring(tmp_path, "--uring-pool", pool)
    try:
        socks = []
        for _ in range(4):  # several connections, so their buffers could be mixed up
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(10)
            sock.connect(server.endpoint.path)
            socks.append(sock)
        for step, size in enumerate(_SIZES * 2):
            for c, sock in enumerate(socks):
                message = bytes((step * 7 + c * 13 + i) % 251 for i in range(size))
                assert echo(sock, message) == message, (step, size, c)
        for sock in socks:
            sock.close()
    finally:
        stats = _stats(server)
    total = 2 * sum(_SIZES) * 4
    assert stats["bytes_in"] == stats["bytes_out"] == total
    assert stats["errors"] == 0 and stats["resets"] == 0


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("mode", "workload"), [("discard", "send"), ("source", "recv")])
def test_other_modes_through_a_tiny_pool(tmp_path, mode, workload):
    _skip_without_uring()
    server = _serve_uring(tmp_path, "--mode", mode, "--uring-pool", "2x1K")
    try:
        result = run_load(quick_config(server.endpoint, size=4 * K, conns=8, workload=workload))
    finally:
        _stats(server)
    assert result["errors"]["total"] == 0, result["error_samples"]
    assert result["messages"] > 0


@pytest.mark.timeout(30)
def test_the_pool_circulates_only_what_the_load_needed():
    # The ring is FIFO: every buffer in it is used in turn, so the pool starts with a few and
    # grows on ENOBUFS (all 64 x 256 KiB in circulation cost 0.81x at 8 x 1 MiB).
    _skip_without_uring()
    from fastsock.uring.pool import GROW_BY, INITIAL_BUFFERS, BufferPool
    from fastsock.uring.ring import Ring

    ring = Ring(entries=8, cq_entries=16)
    try:
        pool = BufferPool(ring, PoolSpec(64, 4096))
        assert pool.entries == 64
        assert len(pool.reserve) == 64 - INITIAL_BUFFERS
        assert pool.tail == INITIAL_BUFFERS  # published: the kernel sees that many
        assert pool.grow() == GROW_BY
        assert pool.tail == INITIAL_BUFFERS + GROW_BY
        assert pool.grow(1000) == 64 - INITIAL_BUFFERS - GROW_BY
        assert pool.grow() == 0 and pool.reserve == []
        assert pool.tail == 64
    finally:
        ring.close()
        pool.close()
    small = Ring(entries=8, cq_entries=16)
    try:
        tiny = BufferPool(small, PoolSpec(3, 4096))  # fewer than INITIAL_BUFFERS: all at once
        assert tiny.entries == 4 and tiny.reserve == [] and tiny.tail == 3
    finally:
        small.close()
        tiny.close()
