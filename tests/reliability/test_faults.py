"""Issue 15, item 2: faults at every point of an exchange, against one server per transport.

Resets (SO_LINGER 0) and half-closes mid-request, mid-response and mid-sendfile; a client that
vanishes with answers queued; a file truncated, grown or replaced while it is being sent. After
each fault the server's descriptor count is back to its baseline and a well-behaved client is
still served. A response never claims bytes it cannot send: when the file shrinks the connection
is closed short of the promised length (and counted in ``errors``); when it grows or is replaced
the body is exactly the bytes promised, from the file as it was opened.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from fastsock.address import Endpoint, connect
from tests.conftest import parse_stats

BIG = 8 << 20


def rst_close(sock: socket.socket) -> None:
    """Close with a reset (RST) instead of a FIN, as a crashed or impatient client does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode()


class Reader:
    """Responses off a socket, keeping what arrived past the one being read."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _more(self) -> bool:
        chunk = self.sock.recv(1 << 20)
        self.buf += chunk
        return bool(chunk)

    def head(self) -> bytes:
        while b"\r\n\r\n" not in self.buf:
            assert self._more(), f"EOF inside a response head: {self.buf[:80]!r}"
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        return head

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            assert self._more(), f"EOF after {len(self.buf)} of {n} bytes"
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def to_eof(self) -> bytes:
        try:
            while self._more():
                pass
        except ConnectionResetError:
            pass
        data, self.buf = self.buf, b""
        return data

    def response(self) -> bytes:
        """The body of the next response."""
        return self.exactly(content_length(self.head()))


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            return int(value)
    raise AssertionError(f"no Content-Length in {head!r}")


class Site:
    def __init__(self, root) -> None:
        self.root = root
        self.big = os.urandom(BIG)
        (root / "big.bin").write_bytes(self.big)
        (root / "small.txt").write_bytes(b"small\n")
        self.count = 0

    def fresh(self, size: int = BIG) -> tuple[str, bytes]:
        """A file of its own for a scenario that changes it."""
        self.count += 1
        name = f"f{self.count}.bin"
        data = self.big[:size]
        (self.root / name).write_bytes(data)
        return name, data


# -- the scenarios: each gets the endpoint and the site, and returns a one-line outcome --------


def reset_mid_request(ep: Endpoint, site: Site) -> str:
    sock = connect(ep, timeout=10)
    sock.sendall(b"GET /big.bin HTTP/1.1\r\nHo")
    rst_close(sock)
    return "reset after a partial head"


def half_close_mid_request(ep: Endpoint, site: Site) -> str:
    with connect(ep, timeout=10) as sock:
        sock.sendall(b"GET /big.bin HTTP/1.1\r\nHo")
        sock.shutdown(socket.SHUT_WR)
        got = Reader(sock).to_eof()  # closed, with a 400 or nothing: never a hang
    assert got == b"" or got.startswith(b"HTTP/1.1 4"), got[:80]
    return f"EOF after {len(got)} bytes ({got[:12]!r})"


def reset_mid_response(ep: Endpoint, site: Site) -> str:
    sock = connect(ep, timeout=10)
    sock.sendall(get("/small.txt") * 200)
    assert Reader(sock).head().startswith(b"HTTP/1.1 200")
    rst_close(sock)
    return "reset after the first of 200 pipelined answers"


def half_close_mid_response(ep: Endpoint, site: Site) -> str:
    with connect(ep, timeout=20) as sock:
        sock.sendall(get("/small.txt") * 50 + get("/big.bin"))
        sock.shutdown(socket.SHUT_WR)  # everything asked for is still owed
        reader = Reader(sock)
        for _ in range(50):
            assert reader.response() == b"small\n"
        assert reader.response() == site.big
        assert reader.to_eof() == b""
    return "all 51 answers owed arrived, then EOF"


def reset_mid_sendfile(ep: Endpoint, site: Site) -> str:
    sock = connect(ep, timeout=10)
    sock.sendall(get("/big.bin"))
    reader = Reader(sock)
    reader.head()
    reader.exactly(256 << 10)
    rst_close(sock)
    return "reset 256 KiB into an 8 MiB body"


def half_close_mid_sendfile(ep: Endpoint, site: Site) -> str:
    with connect(ep, timeout=20) as sock:
        sock.sendall(get("/big.bin"))
        reader = Reader(sock)
        reader.head()
        got = reader.exactly(256 << 10)
        sock.shutdown(socket.SHUT_WR)
        assert got + reader.exactly(BIG - len(got)) == site.big
        assert reader.to_eof() == b""
    return "the rest of the body arrived after our half-close, then EOF"


def vanish_with_answers_queued(ep: Endpoint, site: Site) -> str:
    sock = connect(ep, timeout=10)
    sock.sendall(get("/big.bin") * 32)  # 256 MiB owed, none of it read
    time.sleep(0.05)  # (any moment will do: the server has started answering or will)
    sock.close()
    return "closed with 32 x 8 MiB answers owed"


@dataclass
class MidBody:
    """A GET of a fresh BIG-byte file stopped a little way into the body."""

    path: Path
    data: bytes  # the file as it was when the server opened it
    sock: socket.socket
    reader: Reader
    got: bytes  # the first 256 KiB of the body


@contextmanager
def mid_body(ep: Endpoint, site: Site) -> Iterator[MidBody]:
    """The moment the three scenarios below change the file under the server: its head read
    (promising BIG bytes) and the first 256 KiB of the body."""
    name, data = site.fresh()
    with connect(ep, timeout=20) as sock:
        sock.sendall(get(f"/{name}"))
        reader = Reader(sock)
        assert content_length(reader.head()) == BIG
        yield MidBody(site.root / name, data, sock, reader, reader.exactly(256 << 10))


def truncated_while_sent(ep: Endpoint, site: Site) -> str:
    with mid_body(ep, site) as m:
        os.truncate(m.path, 1 << 20)
        got = m.got + m.reader.to_eof()
    assert len(got) < BIG, "the server claimed bytes the file no longer has"
    kept = 1 << 20
    assert got[:kept] == m.data[: min(len(got), kept)]
    # Past the new end: over TCP, sendfile queues page-cache pages in the socket without a copy,
    # so bytes queued before the truncation may arrive as the zeros the kernel put in those
    # pages (seen here: a 16 MiB file cut to 1 MiB, zeros from byte ~1.2 MiB). The client
    # still gets a short body and a close, so it knows the answer is incomplete.
    zeros = sum(1 for i in range(kept, len(got), 4096) if got[i] == 0)
    return f"connection closed after {len(got)} of {BIG} promised bytes ({zeros} zero pages)"


def grown_while_sent(ep: Endpoint, site: Site) -> str:
    with mid_body(ep, site) as m:
        with open(m.path, "ab") as f:
            f.write(b"more" * 1000)
        assert m.got + m.reader.exactly(BIG - len(m.got)) == m.data  # exactly what was promised
        m.sock.sendall(get(f"/{m.path.name}"))  # the connection is still good
        assert m.reader.response() == m.data + b"more" * 1000
    return "body exactly the promised length; the next request saw the new size"


def replaced_while_sent(ep: Endpoint, site: Site) -> str:
    new = os.urandom(BIG // 2)
    with mid_body(ep, site) as m:
        (site.root / "replacement").write_bytes(new)
        os.replace(site.root / "replacement", m.path)
        assert m.got + m.reader.exactly(BIG - len(m.got)) == m.data  # the file as it was opened
        m.sock.sendall(get(f"/{m.path.name}"))
        assert m.reader.response() == new
    return "the old file's bytes, complete; the next request got the new file"


SCENARIOS: list[Callable[[Endpoint, Site], str]] = [
    reset_mid_request,
    half_close_mid_request,
    reset_mid_response,
    half_close_mid_response,
    reset_mid_sendfile,
    half_close_mid_sendfile,
    vanish_with_answers_queued,
    truncated_while_sent,
    grown_while_sent,
    replaced_while_sent,
]


def fds_back_to(pid: int, baseline: int, timeout: float = 10) -> int:
    """Wait until the server holds ``baseline`` descriptors again (it closes a connection when
    it sees the fault, which is a moment after the client caused it)."""
    proc = psutil.Process(pid)
    deadline = time.monotonic() + timeout
    while (fds := proc.num_fds()) != baseline and time.monotonic() < deadline:
        time.sleep(0.01)
    return fds


@pytest.mark.timeout(180)
@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_faults_at_every_point_leave_the_server_as_it_was(serve, tmp_path, transport):
    root = tmp_path / "www"
    root.mkdir()
    site = Site(root)
    where = ["--port", "0"] if transport == "tcp" else ["--unix", str(tmp_path / "f.sock")]
    # No open-file cache: every descriptor the server holds belongs to a connection.
    server = serve(*where, "--mode", "http", "--root", str(root), "--open-files", "0")
    baseline = psutil.Process(server.pid).num_fds()
    print(f"\n{transport}: server fds at start {baseline}")
    for scenario in SCENARIOS:
        outcome = scenario(server.endpoint, site)
        fds = fds_back_to(server.pid, baseline)
        print(f"  {scenario.__name__:28} {outcome}; fds {fds}")
        assert fds == baseline, f"{scenario.__name__}: {fds - baseline} descriptors leaked"
        with connect(server.endpoint, timeout=10) as sock:  # and it serves the next client
            sock.sendall(get("/small.txt"))
            assert Reader(sock).response() == b"small\n", scenario.__name__
        assert fds_back_to(server.pid, baseline) == baseline
    assert server.stop() == 0
    stats = parse_stats(server.stderr_text)
    print(f"  stats: {stats}")
    assert stats["accepted"] == stats["closed"]
    assert stats["errors"] == 1  # the truncated file, and nothing else
