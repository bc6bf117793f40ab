"""Fixtures for the http mode: a served tree of files, servers on TCP and UNIX, raw clients."""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fastsock.address import connect
from fastsock.process import ServerProcess

# Sizes around the edges that matter: empty, one byte, the copy/sendfile chunk boundaries, and
# large enough for many EAGAIN rounds.
SIZES = {
    "empty.bin": 0,
    "one.bin": 1,
    "1k.bin": 1024,
    "64k1.bin": 64 * 1024 + 1,
    "1m7.bin": (1 << 20) + 7,
    "16m.bin": 16 << 20,
    "64m.bin": 64 << 20,
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root with random files of :data:`SIZES`, text files, a subdirectory with an index."""
    root = tmp_path_factory.mktemp("site")
    seed = os.urandom(1 << 20)
    for name, size in SIZES.items():
        with open(root / name, "wb") as f:
            left = size
            while left:
                # Distinct megabytes (a counter mixed in) so a misplaced chunk changes the hash.
                chunk = hashlib.sha256(left.to_bytes(8, "big")).digest() + seed
                f.write(chunk[:left])
                left -= min(left, len(chunk))
    (root / "hello.txt").write_text("hello, world\n")
    (root / "page.html").write_text("<p>page</p>\n")
    (root / "docs").mkdir()
    (root / "docs" / "index.html").write_text("<h1>docs</h1>\n")
    (root / "docs" / "a b.txt").write_text("spaced\n")
    (root / "empty_dir").mkdir()
    return root


@pytest.fixture
def http_serve(serve: Callable[..., ServerProcess], tmp_path: Path) -> Callable[..., ServerProcess]:
    """``http_serve(root, transport="tcp"|"unix", *extra)`` starts ``--mode http``."""

    def start(root: Path, transport: str = "tcp", *extra: str) -> ServerProcess:
        where = ["--port", "0"] if transport == "tcp" else ["--unix", str(tmp_path / "h.sock")]
        return serve(*where, "--mode", "http", "--root", str(root), *extra)

    return start


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a UNIX socket path."""

    def __init__(self, path: str, timeout: float = 30.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self._unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._unix_path)
        self.sock = sock


def client_for(server: ServerProcess, timeout: float = 30.0) -> http.client.HTTPConnection:
    ep = server.endpoint
    if ep.is_unix:
        return UnixHTTPConnection(ep.path, timeout=timeout)
    return http.client.HTTPConnection(ep.host, ep.port, timeout=timeout)


def curl_target(server: ServerProcess, path: str) -> list[str]:
    """curl arguments that reach ``path`` on ``server`` over its transport."""
    ep = server.endpoint
    if ep.is_unix:
        return ["--unix-socket", ep.path, f"http://localhost{path}"]
    return [f"http://{ep.host}:{ep.port}{path}"]


class _KeepOpen:
    """A file that ignores close(): several HTTPResponses read one buffered stream in turn."""

    def __init__(self, f: object) -> None:
        self._f = f

    def __getattr__(self, name: str) -> object:
        return getattr(self._f, name)

    def close(self) -> None:
        pass


class _SharedFile:
    def __init__(self, f: object) -> None:
        self._f = _KeepOpen(f)

    def makefile(self, mode: str) -> object:
        return self._f


class RawClient:
    """A socket to the server: send exact bytes, read responses with http.client's parser."""

    def __init__(self, server: ServerProcess, timeout: float = 15.0) -> None:
        self.sock = connect(server.endpoint, timeout=timeout)
        self._file = self.sock.makefile("rb")
        self._shared = _SharedFile(self._file)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self, method: str = "GET") -> tuple[http.client.HTTPResponse, bytes]:
        resp = http.client.HTTPResponse(self._shared, method=method)  # type: ignore[arg-type]
        resp.begin()
        return resp, resp.read()

    def at_eof(self) -> bool:
        """True when the server closed the connection (after everything it sent was read)."""
        return self._file.read(1) == b""

    def close(self) -> None:
        self._file.close()
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def raw() -> Iterator[Callable[..., RawClient]]:
    opened: list[RawClient] = []

    def open_(server: ServerProcess, timeout: float = 15.0) -> RawClient:
        client = RawClient(server, timeout)
        opened.append(client)
        return client

    yield open_
    for client in opened:
        client.close()


def open_fds_under(pid: int, root: Path) -> list[str]:
    """Paths of the descriptors process ``pid`` holds open inside ``root``."""
    prefix = str(root.resolve()) + "/"
    found = []
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
        except OSError:
            continue
        if target.startswith(prefix):
            found.append(target)
    return found
