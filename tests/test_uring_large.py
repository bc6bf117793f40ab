"""--engine uring's large mode (fastsock/uring/connection.py, LARGE_MIN): an echo connection
whose messages are large reads on readiness (a multishot poll, recv_into one shared buffer,
send at once) and goes back to the pool's RECVs when they are small again. Every byte is
checked across the switches both ways; backpressure, EOF, resets and the idle timeout are
checked in large mode."""

from __future__ import annotations

import os
import queue
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from fastsock.address import unix_endpoint
from fastsock.load import run_load
from fastsock.process import ServerProcess
from fastsock.server import ServerConfig
from fastsock.uring.connection import LARGE_LEAVE, LARGE_MIN, SMALL_AFTER
from tests.conftest import echo, parse_stats, uring_unavailable, wait_for
from tests.load.conftest import quick_config

K = 1024


@pytest.fixture(autouse=True)
def _needs_uring():
    reason = uring_unavailable()
    if reason is not None:
        pytest.skip(reason)


@contextmanager
def uring_in_thread(path: str, **config) -> Iterator:
    """A UringServer running in a thread of this process (made there: a single-issuer ring
    belongs to the thread that set it up), so a test can look at its connections; stopped
    (drained) on exit."""
    from fastsock.uring.server import UringServer

    box: queue.Queue = queue.Queue()
    stop = threading.Event()

    def main() -> None:
        try:
            server = UringServer(ServerConfig(endpoint=unix_endpoint(path), **config))
        except BaseException as err:
            box.put(err)
            return

        def tick() -> None:
            if stop.is_set():
                server.shutdown()
            else:
                server.call_later(0.02, tick)

        server.call_later(0.02, tick)
        box.put(server)
        server.run()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    server = box.get(timeout=10)
    if isinstance(server, BaseException):
        raise server
    try:
        yield server
    finally:
        stop.set()
        thread.join(timeout=15)
        assert not thread.is_alive(), "the server did not stop"


def connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(path)
    return sock


def pattern(step: int, c: int, size: int) -> bytes:
    return (bytes(range(step % 7, 251)) * (size // 240 + 2))[c : c + size]


def into_large_mode(server, sock: socket.socket, size: int = 100_000) -> tuple[bytes, object]:
    """Echo ``size`` random bytes on ``sock`` (the server's one connection) and wait until that
    connection reads on readiness with its poll armed: (the message, the connection)."""
    message = os.urandom(size)
    assert echo(sock, message) == message
    (conn,) = server.connections
    assert wait_for(lambda: conn.large and conn.polling)
    return message, conn


@pytest.mark.timeout(60)
def test_the_modes_switch_both_ways_and_every_byte_comes_back(tmp_path):
    path = str(tmp_path / "large.sock")
    big = LARGE_MIN + 1
    # small_mode, large mode (the first RECV above LARGE_MIN), larger and odd sizes in large
    # mode, small reads until it leaves, small_mode again, and back to large.
    plan = (
        [("small", 64)] * (SMALL_AFTER + 2)
        + [("large", 70_000), ("large", big), ("large", 1 << 20), ("large", 20_000)]
        + [("large", 300_000), ("large", 5), ("large", 64 * K)]
        + [("pool", 64)] * (LARGE_LEAVE + SMALL_AFTER + 2)
        + [("large", 200_000), ("large", 3)]
    )
    with uring_in_thread(path) as server:
        socks = [connect(path) for _ in range(3)]
        total = 0
        for step, (_, size) in enumerate(plan):
            for c, sock in enumerate(socks):
                message = pattern(step, c, size)
                assert echo(sock, message) == message, (step, size, c)
                total += size
            conns = list(server.connections)
            if plan[step][0] == "large":
                assert wait_for(lambda c=conns: all(x.large for x in c)), (step, size)
        for sock in socks:
            sock.close()
        assert wait_for(lambda: not server.connections)
    stats = server.stats
    assert stats.bytes_in == stats.bytes_out == total
    assert stats.errors == 0 and stats.resets == 0


@pytest.mark.timeout(60)
def test_small_messages_leave_large_mode_and_reach_small_mode(tmp_path):
    path = str(tmp_path / "leave.sock")
    with uring_in_thread(path) as server:
        sock = connect(path)
        message, conn = into_large_mode(server, sock)
        for i in range(LARGE_LEAVE + SMALL_AFTER + 1):
            assert echo(sock, b"%04d" % i) == b"%04d" % i
        assert wait_for(lambda: not conn.large and not conn.polling and conn.small_mode)
        assert echo(sock, message) == message  # and back
        assert wait_for(lambda: conn.large and conn.polling)
        sock.close()
        assert wait_for(lambda: not server.connections)
    assert (
        server.stats.bytes_in
        == server.stats.bytes_out
        == 2 * 100_000 + 4 * (LARGE_LEAVE + SMALL_AFTER + 1)
    )


@pytest.mark.timeout(60)
def test_many_connections_echo_large_messages(tmp_path):
    sock = str(tmp_path / "many.sock")
    argv = [sys.executable, "-m", "fastsock", "serve", "--engine", "uring", "--unix", sock]
    server = ServerProcess(argv)
    try:
        result = run_load(
            quick_config(server.endpoint, size=64 * K, conns=200, depth=2, duration=1.5)
        )
    finally:
        server.stop()
    stats = parse_stats(server.stderr_text)
    assert result["errors"]["total"] == 0, result["error_samples"]
    assert result["conns_alive"] == 200
    assert result["per_connection"]["min"] > 0
    assert stats["errors"] == 0 and stats["resets"] == 0
    assert stats["bytes_in"] == stats["bytes_out"] > 0


@pytest.mark.timeout(60)
def test_a_slow_reader_of_large_messages_keeps_the_queue_bounded(tmp_path):
    path = str(tmp_path / "slow.sock")
    high = 256 * K
    with uring_in_thread(path, high_water=high, low_water=64 * K) as server:
        sock = connect(path)
        warm = os.urandom(100_000)
        assert echo(sock, warm) == warm  # large mode
        payload = os.urandom(24 << 20)
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        time.sleep(0.5)  # not reading: the server's sends go partial, its queue fills
        (conn,) = server.connections
        assert conn.large and conn.held
        assert conn.out_bytes <= high
        got = bytearray()
        while len(got) < len(payload):
            chunk = sock.recv(1 << 20)
            assert chunk
            got += chunk
        sender.join(timeout=10)
        assert bytes(got) == payload
        sock.close()
        assert wait_for(lambda: not server.connections)
    stats = server.stats
    assert stats.read_pauses >= 1
    assert 0 < stats.peak_buffered <= high
    assert stats.bytes_in == stats.bytes_out == len(warm) + len(payload)


@pytest.mark.timeout(60)
def test_half_close_in_large_mode_sends_everything_then_closes(tmp_path):
    path = str(tmp_path / "half.sock")
    with uring_in_thread(path) as server:
        sock = connect(path)
        warm, conn = into_large_mode(server, sock, 200_000)
        last = os.urandom(3 << 20)
        sender = threading.Thread(
            target=lambda: (sock.sendall(last), sock.shutdown(socket.SHUT_WR))
        )
        sender.start()
        got = bytearray()
        while chunk := sock.recv(1 << 20):  # EOF only after everything came back
            got += chunk
        sender.join(timeout=10)
        assert bytes(got) == last
        sock.close()
        assert wait_for(lambda: not server.connections)
    assert server.stats.bytes_in == server.stats.bytes_out == len(warm) + len(last)


@pytest.mark.timeout(60)
def test_a_reset_in_large_mode_releases_the_connection(tmp_path):
    path = str(tmp_path / "reset.sock")
    with uring_in_thread(path, high_water=256 * K, low_water=64 * K) as server:
        sock = connect(path)
        warm = os.urandom(100_000)
        assert echo(sock, warm) == warm
        sock.setblocking(False)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # fill both ways without reading
            try:
                sock.send(b"x" * (1 << 20))
            except BlockingIOError:
                break
        time.sleep(0.2)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        assert wait_for(lambda: not server.connections), "never released"
        ok = connect(path)
        assert echo(ok, warm) == warm  # still serving
        ok.close()
        assert wait_for(lambda: not server.connections)
    assert server.stats.errors == 0
    assert server.stats.closed == server.stats.accepted == 2


@pytest.mark.timeout(30)
def test_the_idle_timeout_closes_a_quiet_connection_in_large_mode(tmp_path):
    path = str(tmp_path / "idle.sock")
    with uring_in_thread(path, idle_timeout=0.3) as server:
        sock = connect(path)
        _, conn = into_large_mode(server, sock)
        assert sock.recv(1) == b""  # closed by the server's idle sweep
        sock.close()
        assert wait_for(lambda: not server.connections)
        assert conn.released and not conn.polling
    assert server.stats.idle_closed == 1


@pytest.mark.timeout(30)
def test_large_mode_can_be_turned_off_for_paired_benchmarks(tmp_path):
    path = str(tmp_path / "off.sock")  # bench.studies.scale's -nolarge: --uring-no-large
    with uring_in_thread(path, uring_large=False) as server:
        sock = connect(path)
        message = os.urandom(300_000)
        assert echo(sock, message) == message
        (conn,) = server.connections
        assert not conn.large and not conn.polling
        sock.close()
        assert wait_for(lambda: not server.connections)


@pytest.mark.timeout(60)
def test_a_flood_in_large_mode_yields_to_the_other_connections(tmp_path):
    """A connection with more waiting than LARGE_READS full reads stops there and reads on in
    the loop's next turn (server.read_again), so one peer that keeps its socket full cannot
    hold the loop: another connection's small echoes go on meanwhile, and the flood's bytes all
    come back in order."""
    path = str(tmp_path / "flood.sock")
    # 4 KiB reads: a few MiB in flight is hundreds of full reads, far over LARGE_READS.
    with uring_in_thread(path, read_size=4 * K, high_water=8 << 20) as server:
        yielded = []
        read_again = server.read_again
        server.read_again = lambda conn: (yielded.append(conn), read_again(conn))[-1]
        flood, other = connect(path), connect(path)
        warm = pattern(0, 0, 64 * K)
        assert echo(flood, warm) == warm
        assert wait_for(lambda: any(c.large for c in server.connections))
        payload = os.urandom(16 << 20)
        got = bytearray()

        def read_flood() -> None:
            while len(got) < len(payload):
                chunk = flood.recv(1 << 20)
                if not chunk:
                    return
                got.extend(chunk)

        sender = threading.Thread(target=flood.sendall, args=(payload,))
        reader = threading.Thread(target=read_flood)
        sender.start()
        reader.start()
        pings = 0
        while reader.is_alive() and pings < 200:
            message = pattern(pings, 1, 64)
            assert echo(other, message) == message
            pings += 1
        sender.join(timeout=20)
        reader.join(timeout=20)
        assert bytes(got) == payload
        assert pings > 0
        flood.close()
        other.close()
        assert wait_for(lambda: not server.connections)
    assert yielded, "no wake-up reached LARGE_READS reads: the test did not flood"
    assert server.stats.errors == 0


@pytest.mark.timeout(30)
def test_the_hidden_no_large_option_reaches_the_config(monkeypatch):
    """``fastsock serve --uring-no-large`` (the scale study's -nolarge variant) turns large
    mode off in the server's config, and ``--help`` does not offer it to users."""
    from click.testing import CliRunner

    from fastsock import cli, engines

    made = []

    def fake_make_server(config, engine, sock, owns_unix_file):
        made.append(config)
        raise OSError("stop here")

    monkeypatch.setattr(engines, "make_server", fake_make_server)
    for extra, large in (([], True), (["--uring-no-large"], False)):
        result = CliRunner().invoke(cli.main, ["serve", "--port", "0", "--engine", "uring", *extra])
        assert result.exit_code == 2 and made[-1].uring_large is large
    help_text = CliRunner().invoke(cli.main, ["serve", "--help"]).output
    assert "--uring-pool" in help_text and "no-large" not in help_text


@pytest.mark.timeout(30)
@pytest.mark.parametrize("which", ["recv_into", "send"])
def test_a_failure_in_the_loops_large_echo_releases_the_connection(tmp_path, monkeypatch, which):
    """The completion loop's own large-mode echo (UringServer.run): a reset seen by its
    recv_into or its send (a peer that goes between the poll completion and the call) counts
    a reset, closes that connection and no other, and the loop serves on."""
    import errno

    doomed: set[socket.socket] = set()
    real = getattr(socket.socket, which)

    def failing(sock, *args):
        if sock in doomed:
            raise ConnectionResetError(errno.ECONNRESET, "reset (test)")
        return real(sock, *args)

    monkeypatch.setattr(socket.socket, which, failing)  # before the loop takes it unbound
    path = str(tmp_path / f"fail-{which}.sock")
    with uring_in_thread(path) as server:
        other = connect(path)
        other_msg, other_conn = into_large_mode(server, other)
        sock = connect(path)
        assert wait_for(lambda: len(server.connections) == 2)
        (conn,) = server.connections - {other_conn}
        message = os.urandom(100_000)
        assert echo(sock, message) == message
        assert wait_for(lambda: conn.large and conn.polling)
        doomed.add(conn.sock)
        sock.sendall(os.urandom(64 * K))  # one large-mode echo: into the loop's fast path
        assert wait_for(lambda: conn not in server.connections), "never released"
        assert server.stats.resets == 1 and server.stats.errors == 0
        assert echo(other, other_msg) == other_msg  # the other connection is served on
        sock.close()
        other.close()
        assert wait_for(lambda: not server.connections)
