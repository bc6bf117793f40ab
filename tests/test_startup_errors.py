"""Start-up failures: one line on stderr, exit 2, no traceback; socket files handled with care."""

from __future__ import annotations

import os
import socket
import stat
import subprocess

import pytest

from fastsock.address import connect
from tests.conftest import FASTSOCK, assert_one_line_error


@pytest.fixture
def serve(serve_engine):
    """Every test here that starts a server runs against both engines (see conftest)."""
    return serve_engine


def run_serve(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FASTSOCK, "serve", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.timeout(30)
def test_port_in_use(serve, engine):
    first = serve("--port", "0")
    result = run_serve("--port", str(first.endpoint.port), "--engine", engine)
    assert_one_line_error(result, "address already in use")


@pytest.mark.timeout(30)
def test_missing_directory(tmp_path, engine):
    result = run_serve("--unix", str(tmp_path / "nope" / "x.sock"), "--engine", engine)
    assert_one_line_error(result, "does not exist")


@pytest.mark.timeout(30)
def test_path_longer_than_kernel_limit(tmp_path, engine):
    long_path = str(tmp_path / ("a" * 120))
    result = run_serve("--unix", long_path, "--engine", engine)
    assert_one_line_error(result, "longer than the kernel limit of 107")


@pytest.mark.timeout(30)
def test_refuses_to_replace_a_regular_file(tmp_path, engine):
    path = tmp_path / "precious.txt"
    path.write_text("keep me")
    result = run_serve("--unix", str(path), "--engine", engine)
    assert_one_line_error(result, "is not a socket")
    assert path.read_text() == "keep me"


@pytest.mark.timeout(30)
def test_refuses_a_socket_someone_answers_on(serve, tmp_path, engine):
    path = tmp_path / "live.sock"
    live = serve("--unix", str(path))
    result = run_serve("--unix", str(path), "--engine", engine)
    assert_one_line_error(result, "is in use")
    with connect(live.endpoint, timeout=5) as sock:  # the live server is untouched
        sock.sendall(b"ok")
        assert sock.recv(2) == b"ok"


@pytest.mark.timeout(30)
def test_replaces_a_stale_socket_file_and_removes_its_own(serve, tmp_path):
    path = tmp_path / "stale.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # a socket file nobody listens on: what a crashed server leaves behind
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    server = serve("--unix", str(path))
    with connect(server.endpoint, timeout=5) as sock:
        sock.sendall(b"hi")
        assert sock.recv(2) == b"hi"
    assert server.stop() == 0
    assert not path.exists()


@pytest.mark.timeout(30)
def test_does_not_remove_a_file_that_replaced_its_socket(serve, tmp_path):
    path = tmp_path / "moved.sock"
    server = serve("--unix", str(path))
    os.unlink(path)
    path.write_text("someone else's")
    assert server.stop() == 0
    assert path.read_text() == "someone else's"


@pytest.mark.timeout(30)
def test_unix_mode_sets_permissions(serve, tmp_path):
    path = tmp_path / "mode.sock"
    serve("--unix", str(path), "--unix-mode", "600")
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ([], "--port N"),
        (["--port", "0", "--unix", "/tmp/x.sock"], "not both"),
        (["--port", "70000"], "70000"),
        (["--port", "0", "--mode", "nonsense"], "nonsense"),
        (["--port", "0", "--host", "example.com"], "not an IPv4 or IPv6 address"),
        (["--port", "0", "--unix-mode", "999"], "octal"),
        (["--port", "0", "--high-water", "lots"], "lots"),
        (["--port", "0", "--high-water", "1K", "--low-water", "2K"], "--low-water"),
        (["--host", "192.0.2.1", "--port", "0"], "not available"),
    ],
)
def test_bad_command_lines(args, fragment):
    assert_one_line_error(run_serve(*args), fragment)
