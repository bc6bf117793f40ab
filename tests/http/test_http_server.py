"""``fastsock serve --mode http`` end to end: real clients over TCP and UNIX sockets."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

from fastsock.address import connect, parse_endpoint
from fastsock.http.config import HttpConfig
from fastsock.server import Server, ServerConfig
from tests.conftest import FASTSOCK, assert_one_line_error, parse_stats
from tests.http.conftest import SIZES, client_for, curl_target, open_fds_under, sha256

CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed")
MODES = {"sendfile": (), "copy": ("--no-sendfile",)}


def file_sha(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_http_client_fetches_every_size_byte_identical(site, http_serve, transport, mode):
    server = http_serve(site, transport, *MODES[mode])
    conn = client_for(server)
    try:
        for name, size in SIZES.items():  # one keep-alive connection for all of them
            conn.request("GET", f"/{name}")
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200, name
            assert int(resp.getheader("Content-Length")) == size == len(body), name
            assert sha256(body) == file_sha(site / name), name
            assert not resp.will_close
    finally:
        conn.close()
    assert server.stop() == 0
    stats = parse_stats(server.stderr_text)
    assert stats["errors"] == 0 and stats["accepted"] == 1


@pytest.mark.timeout(120)
@pytest.mark.parametrize("memory", ["0", "8M"])
def test_small_files_from_memory_or_not_and_changes_seen(tmp_path, http_serve, memory):
    root = tmp_path / "www"
    root.mkdir()
    small = root / "small.bin"
    small.write_bytes(os.urandom(1000))
    server = http_serve(root, "unix", "--memory-cache", memory)
    conn = client_for(server)
    try:
        for content in (small.read_bytes(), os.urandom(999), os.urandom(32 << 10)):
            small.write_bytes(content)  # a new size: seen by the very next request
            for _ in range(3):
                conn.request("GET", "/small.bin")
                resp = conn.getresponse()
                assert resp.status == 200 and resp.read() == content
            conn.request("GET", "/small.bin", headers={"Range": "bytes=5-9"})
            resp = conn.getresponse()
            assert resp.status == 206 and resp.read() == content[5:10]
    finally:
        conn.close()
    assert server.stop() == 0
    assert parse_stats(server.stderr_text)["errors"] == 0


@needs_curl
@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_curl_fetches_every_size_byte_identical(site, http_serve, tmp_path, transport, mode):
    server = http_serve(site, transport, *MODES[mode])
    for name in SIZES:
        out = tmp_path / f"got-{name}"
        result = subprocess.run(
            [CURL, "-sS", "--fail", "--max-time", "60", "-o", str(out), "-w", "%{http_code}"]
            + curl_target(server, f"/{name}"),
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == "200"
        assert file_sha(out) == file_sha(site / name), name
        out.unlink()


@needs_curl
@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_curl_range_head_and_conditional(site, http_serve, transport):
    server = http_serve(site, transport)
    data = (site / "1m7.bin").read_bytes()

    def curl(*args: str, path: str = "/1m7.bin") -> subprocess.CompletedProcess:
        return subprocess.run(
            [CURL, "-sS", "--max-time", "30", *args, *curl_target(server, path)],
            capture_output=True,
            timeout=60,
        )

    assert curl("-r", "1000-1999").stdout == data[1000:2000]
    assert curl("-r", "-10").stdout == data[-10:]
    head = curl("-I").stdout.decode()
    assert head.startswith("HTTP/1.1 200") and f"Content-Length: {len(data)}" in head
    etag = next(line.split(": ", 1)[1] for line in head.splitlines() if line.startswith("ETag"))
    status = curl("-o", "/dev/null", "-w", "%{http_code}", "-H", f"If-None-Match: {etag}")
    assert status.stdout == b"304"
    status = curl("-o", "/dev/null", "-w", "%{http_code}", "-r", f"{len(data)}-")
    assert status.stdout == b"416"


@pytest.mark.timeout(60)
def test_pipelined_requests_come_back_in_order(site, http_serve, raw):
    server = http_serve(site, "unix")
    names = ["hello.txt", "1m7.bin", "missing", "64k1.bin", "empty.bin", "16m.bin", "hello.txt"]
    client = raw(server)
    client.send(b"".join(f"GET /{n} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for n in names))
    for name in names:
        resp, body = client.response()
        if name == "missing":
            assert resp.status == 404
        else:
            assert resp.status == 200 and body == (site / name).read_bytes(), name


@pytest.fixture
def escape_tree(tmp_path):
    """A served root next to a secret, with links that lead out of it."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "ok.txt").write_text("ok")
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    (root / "out").symlink_to(tmp_path / "secret.txt")
    (root / "out_rel").symlink_to("../secret.txt")
    (root / "outdir").symlink_to(tmp_path)
    return root


ESCAPES = [
    "/../secret.txt",
    "/./../secret.txt",
    "/ok.txt/../../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E%2Fsecret.txt",
    "/..%2fsecret.txt",
    "/.%2e/secret.txt",
    "/ok.txt%00.html",
    "/out",
    "/out_rel",
    "/outdir/secret.txt",
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_no_path_escapes_the_root(escape_tree, http_serve, raw, transport):
    server = http_serve(escape_tree, transport)
    client = raw(server)
    for target in [*ESCAPES, str(escape_tree.parent / "secret.txt")]:
        client.send(f"GET {target} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        resp, body = client.response()
        assert resp.status in (403, 404), target
        assert b"SECRET" not in body, target
    client.send(b"GET /ok.txt HTTP/1.1\r\nHost: t\r\n\r\n")
    resp, body = client.response()
    assert resp.status == 200 and body == b"ok"


@needs_curl
@pytest.mark.timeout(60)
def test_curl_path_as_is_cannot_escape(escape_tree, http_serve):
    server = http_serve(escape_tree, "tcp")
    for target in ESCAPES[:7]:
        result = subprocess.run(
            [CURL, "-sS", "--path-as-is", "-w", "\n%{http_code}", *curl_target(server, target)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.stdout.rsplit("\n", 1)[-1] == "404", target
        assert "SECRET" not in result.stdout


@pytest.mark.timeout(60)
def test_error_statuses_over_the_wire(site, http_serve, raw):
    server = http_serve(site, "tcp")
    keep_alive_cases = [
        (b"POST /hello.txt HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 405),
        (b"GET /missing HTTP/1.1\r\n\r\n", 404),
        (b"GET /hello.txt HTTP/1.1\r\nRange: bytes=999-\r\n\r\n", 416),
        (b"GET /docs HTTP/1.1\r\n\r\n", 301),
    ]
    client = raw(server)
    for request, status in keep_alive_cases:
        client.send(request)
        resp, _ = client.response()
        assert resp.status == status, request
    closing_cases = [
        (b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n", 400),
        (b"GET /hello.txt HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n", 413),
        (b"GET /" + b"x" * 10_000 + b" HTTP/1.1\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nX: " + b"y" * 20_000 + b"\r\n\r\n", 431),
        (b"BREW /pot HTTP/1.1\r\n\r\n", 501),
    ]
    for request, status in closing_cases:
        client = raw(server)
        client.send(request)
        resp, _ = client.response()
        assert resp.status == status, request
        assert client.at_eof(), f"{status}: the connection should be closed"


@pytest.mark.timeout(30)
def test_header_timeout_sends_408_and_closes(site, http_serve, raw):
    server = http_serve(site, "tcp", "--header-timeout", "0.5")
    client = raw(server)
    client.send(b"GET /hello.txt HTTP/1.1\r\nHo")
    start = time.monotonic()
    resp, _ = client.response()
    assert resp.status == 408 and client.at_eof()
    assert 0.3 < time.monotonic() - start < 10


@pytest.mark.timeout(60)
def test_http10_and_connection_close_end_the_connection(site, http_serve, raw):
    server = http_serve(site, "unix")
    for request in (
        b"GET /hello.txt HTTP/1.0\r\n\r\n",
        b"GET /hello.txt HTTP/1.1\r\nConnection: close\r\n\r\n",
    ):
        client = raw(server)
        client.send(request)
        resp, body = client.response()
        assert resp.status == 200 and body == b"hello, world\n"
        assert client.at_eof()


def fds_settle(pid: int, root, expected: int, timeout: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        fds = open_fds_under(pid, root)
        if len(fds) <= expected or time.monotonic() > deadline:
            return fds
        time.sleep(0.05)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_client_disconnect_mid_sendfile_costs_nothing(site, http_serve, transport, mode):
    server = http_serve(site, transport, "--open-files", "0", *MODES[mode])
    for i in range(6):
        sock = connect(server.endpoint, timeout=10)
        sock.sendall(b"GET /64m.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        got = sock.recv(65536)
        assert got.startswith(b"HTTP/1.1 200")
        time.sleep(0.05)  # let the server fill the socket and wait for EVENT_WRITE
        if i % 2 and transport == "tcp":
            # Half of them reset instead of closing (SO_LINGER 0: RST, no FIN).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    assert fds_settle(server.pid, site, 0) == [], "file descriptors leaked"
    conn = client_for(server)
    conn.request("GET", "/1m7.bin")
    assert conn.getresponse().read() == (site / "1m7.bin").read_bytes()
    conn.close()
    assert server.stop() == 0
    stats = parse_stats(server.stderr_text)
    assert stats["closed"] == stats["accepted"] == 7


@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", MODES)
def test_a_file_truncated_while_sent_ends_that_connection_only(tmp_path, http_serve, mode):
    root = tmp_path / "www"
    root.mkdir()
    big = root / "big.bin"
    big.write_bytes(os.urandom(32 << 20))
    server = http_serve(root, "unix", *MODES[mode])
    sock = connect(server.endpoint, timeout=15)
    sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
    head = sock.recv(4096)
    assert b"Content-Length: 33554432" in head
    time.sleep(0.2)  # we do not read: the server waits for EVENT_WRITE mid-body
    os.truncate(big, 1 << 20)
    received = len(head)
    while chunk := sock.recv(1 << 20):
        received += len(chunk)
    sock.close()
    assert received < 32 << 20, "the server cannot have sent more than the file holds"
    conn = client_for(server)  # and it still serves everyone else
    conn.request("GET", "/big.bin")
    assert len(conn.getresponse().read()) == 1 << 20
    conn.close()
    assert server.stop() == 0
    assert parse_stats(server.stderr_text)["errors"] >= 1


@pytest.mark.timeout(60)
def test_open_files_stay_bounded_by_connections(site, http_serve):
    server = http_serve(site, "tcp", "--open-files", "0")
    socks = []
    try:
        for _ in range(8):
            sock = connect(server.endpoint, timeout=10)
            # Pipelined: at most one body per connection may be in flight (one open file).
            sock.sendall(b"GET /64m.bin HTTP/1.1\r\nHost: t\r\n\r\n" * 4)
            socks.append(sock)
        time.sleep(0.5)
        held = open_fds_under(server.pid, site)
        assert 1 <= len(held) <= 8, held
    finally:
        for sock in socks:
            sock.close()
    assert fds_settle(server.pid, site, 0) == []


@pytest.mark.timeout(60)
def test_list_dirs_and_index(site, http_serve):
    server = http_serve(site, "tcp", "--list-dirs")
    conn = client_for(server)
    conn.request("GET", "/docs/")
    assert conn.getresponse().read() == b"<h1>docs</h1>\n"
    conn.request("GET", "/empty_dir/")
    resp = conn.getresponse()
    assert resp.status == 200 and b"Index of /empty_dir/" in resp.read()
    conn.request("GET", "/")
    listing = conn.getresponse().read()
    assert b'href="docs/"' in listing and b'href="hello.txt"' in listing
    conn.close()


@pytest.mark.timeout(60)
def test_sendfile_failure_falls_back_to_copying(site, monkeypatch):
    """Where os.sendfile refuses a file (EINVAL: no splice support), bodies are copied."""
    calls = []

    def refusing_sendfile(*args):
        calls.append(args)
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr("fastsock.connection.os.sendfile", refusing_sendfile)
    config = ServerConfig(
        endpoint=parse_endpoint("tcp://127.0.0.1:0"), mode="http", http=HttpConfig(str(site))
    )
    server = Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        sock = connect(server.endpoint, timeout=20)
        sock.sendall(b"GET /16m.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        data = bytearray()
        expected = (site / "16m.bin").read_bytes()
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < len(expected):
            chunk = sock.recv(1 << 20)
            assert chunk, "connection closed early"
            data += chunk
        sock.close()
        assert bytes(data.split(b"\r\n\r\n", 1)[1]) == expected
        assert calls, "os.sendfile was never tried"
    finally:
        server.shutdown_threadsafe()
        thread.join(timeout=10)
    assert not thread.is_alive()


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mode", "http"], "--root"),
        (["--root", "."], "--mode http"),
        (["--mode", "http", "--root", "/nonexistent/dir"], "does not exist"),
    ],
)
def test_bad_http_options_are_one_line_errors(args, message):
    result = subprocess.run(
        [*FASTSOCK, "serve", "--port", "0", *args], capture_output=True, text=True, timeout=20
    )
    assert_one_line_error(result, message)


def test_fixture_python_is_this_python():
    assert FASTSOCK[0] == sys.executable
