"""Shared fixtures: start ``fastsock serve`` as a subprocess and always stop it."""

from __future__ import annotations

import socket
import sys
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
