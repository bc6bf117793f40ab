"""Shared fixtures: start ``fastsock serve`` as a subprocess and always stop it."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from fastsock.process import ServerProcess

FASTSOCK = [sys.executable, "-m", "fastsock"]


def has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.fixture
def serve() -> Iterator[Callable[..., ServerProcess]]:
    """``serve("--port", "0", ...)`` starts ``fastsock serve`` and stops it after the test."""
    started: list[ServerProcess] = []

    def start(*args: str, **kwargs: object) -> ServerProcess:
        proc = ServerProcess([*FASTSOCK, "serve", *args], **kwargs)  # type: ignore[arg-type]
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.alive():
            proc.stop(timeout=5)
        else:
            proc.kill()


def parse_stats(stderr: str) -> dict[str, int]:
    """The ``fastsock: stats k=v ...`` line a server prints on exit, as a dict."""
    for line in stderr.splitlines():
        if line.startswith("fastsock: stats "):
            pairs = line[len("fastsock: stats ") :].split()
            return {k: int(v) for k, v in (p.split("=", 1) for p in pairs)}
    raise AssertionError(f"no stats line in stderr: {stderr!r}")


ENGINES = ["epoll", "uring"]
_uring_reason: list[str | None] = []


def uring_unavailable() -> str | None:
    """Why ``--engine uring`` cannot run here (None: it can), asked of the engine itself once."""
    if not _uring_reason:
        from fastsock.uring.ring import UringUnavailable, probe

        try:
            probe()
            _uring_reason.append(None)
        except UringUnavailable as err:
            _uring_reason.append(str(err))
    return _uring_reason[0]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Each engine in turn; ``uring`` is skipped, with the engine's own reason, where the
    kernel or the CPU cannot run it."""
    if request.param == "uring":
        reason = uring_unavailable()
        if reason is not None:
            pytest.skip(reason)
    return request.param


@pytest.fixture
def serve_engine(serve: Callable[..., ServerProcess], engine: str) -> Callable[..., ServerProcess]:
    """``serve`` with ``--engine`` added: a module that overrides ``serve`` with this runs its
    behaviour tests against both engines."""

    def start(*args: str, **kwargs: object) -> ServerProcess:
        return serve(*args, "--engine", engine, **kwargs)

    return start


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], fragment: str, code: int = 2
) -> None:
    """How every command fails on bad input: exit ``code``, nothing on stdout, no traceback, and
    one line on stderr that says ``fragment`` (click's usage errors add a usage and a hint
    line)."""
    assert result.returncode == code, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert any(fragment in line for line in lines), result.stderr
    if not result.stderr.startswith("Usage:"):
        assert len(lines) == 1, result.stderr


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def echo(sock: socket.socket, message: bytes) -> bytes:
    """Send ``message`` from a thread while reading its echo here (a large one would fill both
    socket buffers if it were written before it is read); what came back, short at EOF."""
    sender = threading.Thread(target=sock.sendall, args=(message,))
    sender.start()
    got = bytearray()
    while len(got) < len(message):
        chunk = sock.recv(min(1 << 20, len(message) - len(got)))
        if not chunk:
            break
        got += chunk
    sender.join(timeout=10)
    return bytes(got)
