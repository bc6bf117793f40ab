"""The server's lifecycle: backpressure, half-close, resets, idle timeout, limits, signals."""

from __future__ import annotations

import os
import signal
import socket
import struct
import sys
import threading
import time

import psutil
import pytest

from fastsock.address import connect
from fastsock.handlers.source import expected_stream
from fastsock.process import ServerProcess
from tests.conftest import FASTSOCK, parse_stats


@pytest.fixture
def serve(serve_engine):
    """Every test here that starts a server runs against both engines (see conftest)."""
    return serve_engine


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(1 << 20, n - len(buf)))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def recv_until_eof(sock: socket.socket) -> bytes:
    buf = bytearray()
    while chunk := sock.recv(1 << 20):
        buf += chunk
    return bytes(buf)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_backpressure_bounds_queued_bytes_and_partial_sends_complete(
    serve, tmp_path, transport, engine
):
    high = 64 * 1024
    where = ["--port", "0"] if transport == "tcp" else ["--unix", str(tmp_path / "bp.sock")]
    server = serve(*where, "--high-water", str(high), "--low-water", "16K")
    payload = os.urandom(32 << 20)
    sock = connect(server.endpoint, timeout=20)
    # A client that does not read at first: once the kernel buffers are full the server's sends
    # go partial, its queue fills, and it must stop reading from us instead of buffering 32 MiB.
    # (Not a tiny SO_RCVBUF: on TCP that makes delayed ACKs crawl at a few KB per 40 ms.)
    proc = psutil.Process(server.pid)
    rss_before = proc.memory_info().rss
    sender = threading.Thread(target=sock.sendall, args=(payload,))
    sender.start()
    time.sleep(0.5)  # let the server hit its high-water mark while we are not reading
    peak_rss = proc.memory_info().rss  # 32 MiB sent, none read: memory must not follow
    got = recv_exactly(sock, len(payload))
    sender.join(timeout=20)
    sock.close()
    assert got == payload
    assert server.stop() == 0
    stats = parse_stats(server.stderr_text)
    assert peak_rss - rss_before < 16 << 20, "the server buffered the slow reader's bytes"
    if engine == "epoll":
        assert stats["read_pauses"] >= 1, "the slow reader never paused the server's reading"
        assert 0 < stats["peak_buffered"] <= high
    else:
        # The io_uring pool echo links each send to the next receive (nothing queued in
        # Python); a 32 MiB stream reads in large mode, queued and paused like the epoll
        # engine's (tests/test_uring_large.py checks that): bounded either way.
        assert stats["peak_buffered"] <= high
    assert stats["bytes_in"] == stats["bytes_out"] == len(payload)


@pytest.mark.timeout(30)
def test_half_close_sends_everything_owed_then_closes(serve, tmp_path):
    server = serve("--unix", str(tmp_path / "h.sock"))
    payload = os.urandom(3 << 20)
    sock = connect(server.endpoint, timeout=10)
    sender = threading.Thread(target=lambda: (sock.sendall(payload), sock.shutdown(socket.SHUT_WR)))
    sender.start()
    got = recv_until_eof(sock)  # EOF arrives only after the server sent everything back
    sender.join(timeout=10)
    sock.close()
    assert got == payload


@pytest.mark.timeout(30)
def test_client_reset_is_counted_and_server_keeps_serving(serve):
    server = serve("--port", "0", "--high-water", "64K", "--low-water", "16K")
    sock = connect(server.endpoint, timeout=10)
    sock.setblocking(False)
    # Fill the pipe without reading, so the server holds queued bytes when the reset lands.
    data = b"x" * (1 << 20)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            sock.send(data)
        except BlockingIOError:
            break
    time.sleep(0.2)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # linger 0: RST instead of FIN
    # Garbage and an immediate close from another client, for good measure.
    with connect(server.endpoint) as junk:
        junk.sendall(os.urandom(10_000))
    with connect(server.endpoint) as ok:
        ok.sendall(b"still alive")
        assert recv_exactly(ok, 11) == b"still alive"
    assert server.stop() == 0
    stats = parse_stats(server.stderr_text)
    assert stats["resets"] >= 1
    assert stats["errors"] == 0
    assert stats["closed"] == stats["accepted"], "a reset connection was never released"


@pytest.mark.timeout(30)
def test_idle_timeout_closes_quiet_connections_only(serve):
    server = serve("--port", "0", "--idle-timeout", "0.3")
    idle = connect(server.endpoint, timeout=5)
    busy = connect(server.endpoint, timeout=5)
    start = time.monotonic()
    while time.monotonic() - start < 1.0:
        busy.sendall(b"ping")
        assert recv_exactly(busy, 4) == b"ping"
        time.sleep(0.05)
    assert idle.recv(1) == b""  # closed by the server
    busy.sendall(b"pong")
    assert recv_exactly(busy, 4) == b"pong"
    idle.close()
    busy.close()
    assert server.stop() == 0
    assert parse_stats(server.stderr_text)["idle_closed"] == 1


@pytest.mark.timeout(30)
def test_max_conns_accepts_and_closes_the_excess(serve):
    server = serve("--port", "0", "--max-conns", "2")
    a = connect(server.endpoint, timeout=5)
    b = connect(server.endpoint, timeout=5)
    for s in (a, b):
        s.sendall(b"hi")
        assert recv_exactly(s, 2) == b"hi"
    c = connect(server.endpoint, timeout=5)
    assert c.recv(1) == b""  # closed at once, not left hanging in the backlog
    a.close()
    time.sleep(0.2)
    d = connect(server.endpoint, timeout=5)  # a slot is free again
    d.sendall(b"ok")
    assert recv_exactly(d, 2) == b"ok"
    for s in (b, c, d):
        s.close()
    assert server.stop() == 0
    assert parse_stats(server.stderr_text)["rejected"] == 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_transfer_drains_then_exits_zero(serve, tmp_path, sig):
    path = tmp_path / "drain.sock"
    server = serve("--unix", str(path))
    payload = os.urandom(32 << 20)
    sock = connect(server.endpoint, timeout=20)
    sender = threading.Thread(target=lambda: (sock.sendall(payload), sock.shutdown(socket.SHUT_WR)))
    sender.start()
    first = recv_exactly(sock, 1 << 20)
    os.kill(server.pid, sig)  # mid-transfer: 31 MiB still to go
    rest = recv_until_eof(sock)
    sender.join(timeout=20)
    sock.close()
    assert first + rest == payload
    assert server.stop() == 0
    assert not path.exists(), "the socket file must be removed on exit"
    assert "Traceback" not in server.stderr_text


@pytest.mark.timeout(30)
def test_drain_stops_accepting_and_times_out_stuck_clients(serve, tmp_path):
    path = tmp_path / "stuck.sock"
    server = serve("--unix", str(path), "--drain-timeout", "0.5")
    stuck = connect(server.endpoint, timeout=5)  # never closes on its own
    stuck.sendall(b"x")
    assert recv_exactly(stuck, 1) == b"x"
    os.kill(server.pid, signal.SIGTERM)
    time.sleep(0.2)
    with pytest.raises(OSError):
        connect(server.endpoint, timeout=2)  # no longer accepting
    assert stuck.recv(1) == b""  # closed when the drain timed out
    stuck.close()
    assert server.proc.wait(timeout=10) == 0


@pytest.mark.timeout(30)
def test_source_mode_streams_the_documented_pattern(serve):
    server = serve("--port", "0", "--mode", "source")
    with connect(server.endpoint, timeout=5) as sock:
        got = recv_exactly(sock, 3 << 20)
    assert got == expected_stream(0, 3 << 20)


@pytest.mark.timeout(30)
def test_discard_mode_sends_nothing_back(serve):
    server = serve("--port", "0", "--mode", "discard")
    with connect(server.endpoint, timeout=5) as sock:
        sock.sendall(os.urandom(1 << 20))
        sock.shutdown(socket.SHUT_WR)
        assert recv_until_eof(sock) == b""
    assert server.stop() == 0
    assert parse_stats(server.stderr_text)["bytes_in"] == 1 << 20


@pytest.mark.timeout(60)
def test_out_of_file_descriptors_does_not_spin(tmp_path, engine):
    # 24 descriptors: the server's own few plus ~15 connections; we open 40.
    code = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (24, 24)); "
        "from fastsock.cli import main; "
        f"sys.argv = ['fastsock', 'serve', '--port', '0', '--engine', '{engine}']; main()"
    )
    with ServerProcess([sys.executable, "-c", code]) as server:
        clients = []
        for _ in range(40):
            try:
                clients.append(connect(server.endpoint, timeout=2))
            except OSError:
                break
        time.sleep(0.3)
        proc = psutil.Process(server.pid)
        before = proc.cpu_times()
        time.sleep(1.0)
        after = proc.cpu_times()
        busy = (after.user + after.system) - (before.user + before.system)
        assert busy < 0.3, f"server burned {busy:.2f}s of CPU in 1s while out of fds"
        for c in clients:
            c.close()
        time.sleep(0.3)
        with connect(server.endpoint, timeout=5) as sock:  # recovered
            sock.sendall(b"back")
            assert recv_exactly(sock, 4) == b"back"
        assert server.stop() == 0
    assert parse_stats(server.stderr_text)["accept_errors"] >= 1


def test_fastsock_command_line_entry_points():
    import subprocess

    out = subprocess.run([*FASTSOCK, "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "fastsock" in out.stdout
