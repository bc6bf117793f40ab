"""Servers for the load-generator tests: ``fastsock serve`` subprocesses, and small in-process
servers that misbehave on purpose (corrupt a byte, close mid-run)."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from fastsock.address import Endpoint, tcp_endpoint, unix_endpoint
from fastsock.load import LoadConfig
from fastsock.process import ServerProcess

FASTSOCK = [sys.executable, "-m", "fastsock"]


def quick_config(endpoint: Endpoint, **overrides: object) -> LoadConfig:
    """A short run: tests check behaviour, never speed."""
    params: dict = {"size": 64, "conns": 4, "duration": 0.5, "warmup": 0.1, "connect_timeout": 10}
    params.update(overrides)
    return LoadConfig(endpoint=endpoint, **params)


@pytest.fixture
def fastsock_server(tmp_path) -> Iterator[Callable[..., ServerProcess]]:
    """``fastsock_server(mode="echo", transport="tcp"|"unix")`` starts ``fastsock serve`` on a
    free port or a socket in ``tmp_path``; every server started is stopped afterwards."""
    started: list[ServerProcess] = []

    def start(mode: str = "echo", transport: str = "tcp") -> ServerProcess:
        if transport == "unix":
            where = ["--unix", str(tmp_path / f"{mode}-{len(started)}.sock")]
        elif transport == "tcp6":
            where = ["--host", "::1", "--port", "0"]
        else:
            where = ["--port", "0"]
        proc = ServerProcess([*FASTSOCK, "serve", *where, "--mode", mode])
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop(timeout=5)


class _Handler(socketserver.BaseRequestHandler):
    """Echo, optionally flipping one byte of the whole server's traffic or closing early."""

    def handle(self) -> None:
        server: MisbehavingServer = self.server.owner  # type: ignore[attr-defined]
        sock: socket.socket = self.request
        sock.settimeout(30)
        seen = 0
        buf = bytearray(65536)
        while True:
            try:
                n = sock.recv_into(buf)
            except OSError:
                return
            if n == 0:
                return
            data = buf[:n]
            if server.close_after is not None and seen + n >= server.close_after:
                # Answer part of a message, then hang up: the client sees a short read.
                cut = max(server.close_after - seen, 1)
                with contextlib.suppress(OSError):
                    sock.sendall(data[:cut])
                return
            if server.corrupt_at is not None:
                with server.lock:
                    if not server.corrupted and seen <= server.corrupt_at < seen + n:
                        data[server.corrupt_at - seen] ^= 0xFF
                        server.corrupted = True
            seen += n
            try:
                sock.sendall(data)
            except OSError:
                return


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


class MisbehavingServer:
    """A threaded echo server in this process. ``corrupt_at=K`` flips stream byte K of the
    first connection to reach it (exactly one byte over the server's life); ``close_after=K``
    makes every connection answer K bytes (not a whole number of messages) and close."""

    def __init__(
        self,
        endpoint: Endpoint,
        corrupt_at: int | None = None,
        close_after: int | None = None,
    ) -> None:
        self.corrupt_at = corrupt_at
        self.close_after = close_after
        self.corrupted = False
        self.lock = threading.Lock()
        cls = _UnixServer if endpoint.is_unix else _TcpServer
        self.server = cls(endpoint.sockaddr, _Handler)
        self.server.owner = self  # type: ignore[attr-defined]
        if endpoint.is_unix:
            self.endpoint = endpoint
        else:
            self.endpoint = tcp_endpoint(endpoint.host, self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,))

    def __enter__(self) -> MisbehavingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def misbehaving(tmp_path) -> Iterator[Callable[..., MisbehavingServer]]:
    """``misbehaving(transport="tcp", corrupt_at=..., close_after=...)``: a started server."""
    servers: list[MisbehavingServer] = []

    def start(transport: str = "tcp", **kwargs: object) -> MisbehavingServer:
        if transport == "unix":
            endpoint = unix_endpoint(str(tmp_path / f"bad-{len(servers)}.sock"))
        else:
            endpoint = tcp_endpoint("127.0.0.1", 0)
        server = MisbehavingServer(endpoint, **kwargs)  # type: ignore[arg-type]
        servers.append(server)
        return server.__enter__()

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def free_tcp_port() -> int:
    """A port nobody listens on (bound and released: connecting to it is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(params=["python", "native"])
def engine(request) -> str:
    """Each run_load test runs on both engines. native must be built here (``make install``
    builds it; .ci/run installs a compiler): without it these runs fail with a usage error,
    they are not skipped."""
    return request.param
