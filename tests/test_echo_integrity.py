"""Every byte comes back (1 B to 16 MiB), on every transport and engine, with many connections
at once."""

from __future__ import annotations

import os
import random
import uuid

import pytest

from tests.conftest import has_ipv6_loopback
from tests.echo_client import echo_many

SIZES = [1, 7, 64, 1000, 4096, 65_536, 100_003, 1 << 20, 3 << 20, 8 << 20, 16 << 20]


@pytest.fixture
def serve(serve_engine):
    """Every test here that starts a server runs against both engines (see conftest)."""
    return serve_engine


def _payloads(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    # Every size appears, the 8 MiB one included; the rest are random picks.
    sizes = SIZES + [rng.choice(SIZES[:7]) for _ in range(count - len(SIZES))]
    rng.shuffle(sizes)
    return [os.urandom(n) for n in sizes]


def _transport_args(kind: str, tmp_path) -> list[str]:
    if kind == "tcp":
        return ["--port", "0"]
    if kind == "tcp6":
        if not has_ipv6_loopback():
            pytest.skip("this kernel has no ::1")
        return ["--host", "::1", "--port", "0"]
    if kind == "unix":
        return ["--unix", str(tmp_path / "echo.sock")]
    return ["--unix", f"@fastsock-test-{uuid.uuid4().hex}"]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", ["tcp", "tcp6", "unix", "abstract"])
def test_echo_64_connections_random_payloads(serve, tmp_path, kind):
    server = serve(*_transport_args(kind, tmp_path))
    payloads = _payloads(64, seed=sum(map(ord, kind)))
    echoed = echo_many(server.endpoint, payloads)
    for i, (sent, got) in enumerate(zip(payloads, echoed, strict=True)):
        assert len(got) == len(sent), f"connection {i}: {len(got)} of {len(sent)} bytes"
        assert got == sent, f"connection {i}: bytes differ"
    assert server.stop() == 0


@pytest.mark.timeout(30)
def test_ready_line_formats(serve, tmp_path):
    tcp = serve("--port", "0")
    assert str(tcp.endpoint).startswith("tcp://127.0.0.1:")
    assert tcp.endpoint.port > 0
    path = tmp_path / "x.sock"
    unix = serve("--unix", str(path))
    assert str(unix.endpoint) == f"unix:{path}"
    abstract = serve("--unix", "@fastsock-ready-test")
    assert str(abstract.endpoint) == "unix:@fastsock-ready-test"
