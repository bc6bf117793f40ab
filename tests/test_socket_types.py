"""`fastsock serve --type seqpacket|dgram`: message boundaries kept, every byte back, datagram
rules (no queue, unnamed senders, truncation) counted, socket files handled like streams'."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid

import pytest

from fastsock.address import connect
from fastsock.handlers.source import expected_stream
from tests.conftest import FASTSOCK, assert_one_line_error, has_ipv6_loopback, parse_stats

UDP_MAX = 65_507  # the largest UDP payload over IPv4


def run_serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FASTSOCK, "serve", *args], capture_output=True, text=True, timeout=20)


def dgram_client(endpoint) -> socket.socket:
    sock = connect(endpoint, timeout=5, sock_type=socket.SOCK_DGRAM)
    if endpoint.is_unix:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    return sock


@pytest.mark.timeout(30)
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_udp_echo_returns_each_datagram_whole(serve, host):
    if host == "::1" and not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    server = serve("--host", host, "--port", "0", "--type", "dgram")
    sizes = [1, 64, 1000, 9000, UDP_MAX if host == "127.0.0.1" else 65_000]
    with dgram_client(server.endpoint) as sock:
        for size in sizes:
            payload = os.urandom(size)
            sock.send(payload)
            assert sock.recv(UDP_MAX + 1) == payload
    assert server.stop() == 0
    stats = parse_stats(server.stderr_text)
    assert stats["datagrams_in"] == stats["datagrams_out"] == len(sizes)
    assert stats["bytes_in"] == stats["bytes_out"] == sum(sizes)


@pytest.mark.timeout(30)
def test_udp_ready_line_names_udp():
    proc = subprocess.Popen(
        [*FASTSOCK, "serve", "--port", "0", "--type", "dgram"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("fastsock: listening on udp://127.0.0.1:"), line
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


@pytest.mark.timeout(30)
@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_unix_dgram_echo_and_unnamed_sender(serve, tmp_path, abstract):
    path = f"@fastsock-test-{uuid.uuid4().hex[:12]}" if abstract else str(tmp_path / "d.sock")
    server = serve("--unix", path, "--type", "dgram")
    with dgram_client(server.endpoint) as sock:
        for size in (1, 4096, 200_000):
            payload = os.urandom(size)
            sock.send(payload)
            assert sock.recv(256 * 1024) == payload
        # A sender that never bound has no address: nothing to answer, counted, not fatal.
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as unnamed:
            unnamed.sendto(b"who am I", server.endpoint.sockaddr)
        sock.send(b"still here")
        assert sock.recv(100) == b"still here"
    assert server.stop() == 0
    stats = parse_stats(server.stderr_text)
    assert stats["unreplyable"] == 1
    assert stats["datagrams_in"] == 5 and stats["datagrams_out"] == 4
    assert stats["errors"] == 0
    if not abstract:
        assert not os.path.exists(path), "the datagram socket file is removed on exit"


@pytest.mark.timeout(30)
def test_dgram_source_answers_the_length_asked_for(serve, tmp_path):
    server = serve("--unix", str(tmp_path / "s.sock"), "--type", "dgram", "--mode", "source")
    with dgram_client(server.endpoint) as sock:
        for size in (1, 300, 70_000):
            sock.send(b"\0" * size)
            assert sock.recv(100_000) == expected_stream(0, size)
    assert server.stop() == 0


@pytest.mark.timeout(30)
def test_dgram_longer_than_the_read_buffer_is_counted_not_half_answered(serve, tmp_path):
    server = serve("--unix", str(tmp_path / "t.sock"), "--type", "dgram", "--read-size", "1K")
    with dgram_client(server.endpoint) as sock:
        sock.send(os.urandom(2000))
        sock.send(b"small")
        assert sock.recv(4096) == b"small"  # the long one got no (partial) answer
    assert server.stop() == 0
    assert parse_stats(server.stderr_text)["truncated"] == 1


@pytest.mark.timeout(30)
def test_seqpacket_echo_keeps_message_boundaries(serve, tmp_path):
    server = serve("--unix", str(tmp_path / "p.sock"), "--type", "seqpacket")
    with connect(server.endpoint, timeout=5, sock_type=socket.SOCK_SEQPACKET) as sock:
        for size in (1, 4096, 150_000):
            payload = os.urandom(size)
            sock.send(payload)
            assert sock.recv(256 * 1024) == payload
        # Three messages sent back to back come back as three, not one run of bytes.
        parts = [os.urandom(n) for n in (10, 20, 30)]
        for part in parts:
            sock.send(part)
        assert [sock.recv(1024) for _ in parts] == parts
    assert server.stop() == 0
    stats = parse_stats(server.stderr_text)
    assert stats["bytes_in"] == stats["bytes_out"] == 1 + 4096 + 150_000 + 60
    assert stats["errors"] == 0


@pytest.mark.timeout(30)
def test_seqpacket_source_sends_whole_pattern_messages(serve, tmp_path):
    server = serve("--unix", str(tmp_path / "q.sock"), "--type", "seqpacket", "--mode", "source")
    with connect(server.endpoint, timeout=5, sock_type=socket.SOCK_SEQPACKET) as sock:
        offset = 0
        for _ in range(4):
            message = sock.recv(256 * 1024)
            assert len(message) == 64 * 1024
            assert message == expected_stream(offset, len(message))
            offset += len(message)
    assert server.stop() == 0


@pytest.mark.timeout(30)
def test_seqpacket_message_longer_than_a_read_closes_instead_of_cutting(serve, tmp_path):
    server = serve(
        "--unix", str(tmp_path / "r.sock"), "--type", "seqpacket",
        "--read-size", "4K", "--high-water", "4K", "--low-water", "1K",
    )  # fmt: skip
    with connect(server.endpoint, timeout=5, sock_type=socket.SOCK_SEQPACKET) as sock:
        sock.send(os.urandom(10_000))
        assert sock.recv(20_000) == b"", "a cut message must not be echoed"
    assert server.stop() == 0
    assert parse_stats(server.stderr_text)["errors"] == 1


@pytest.mark.timeout(30)
def test_stale_and_live_dgram_socket_files(serve, tmp_path):
    path = tmp_path / "x.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(str(path))
    stale.close()  # the file stays: a dead server's
    server = serve("--unix", str(path), "--type", "dgram")
    with dgram_client(server.endpoint) as sock:
        sock.send(b"fresh")
        assert sock.recv(10) == b"fresh"
    second = run_serve("--unix", str(path), "--type", "dgram")
    assert second.returncode == 2 and "in use" in second.stderr
    stream = run_serve("--unix", str(path))
    assert stream.returncode == 2 and "another type" in stream.stderr, stream.stderr
    assert len(stream.stderr.strip().splitlines()) == 1


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--port", "0", "--type", "seqpacket"], "--type seqpacket needs a UNIX socket"),
        (["--port", "0", "--type", "dgram", "--mode", "http", "--root", "."], "--type stream"),
    ],
)
def test_refusals_are_one_line(args, fragment):
    assert_one_line_error(run_serve(*args), fragment)
