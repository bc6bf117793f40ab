"""``--engine uring`` refuses, in one line and exit 2, what it cannot do here."""

from __future__ import annotations

import ctypes
import errno

import pytest
from click.testing import CliRunner

from fastsock.cli import main
from fastsock.uring import ring
from tests.test_startup_errors import assert_one_line_error, run_serve


def _serve_in_process(*args: str):
    result = CliRunner().invoke(main, ["serve", "--port", "0", "--engine", "uring", *args])
    return result


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--mode", "http", "--root", "."], "--mode http needs --engine epoll"),
        (["--workers", "2"], "--workers needs --engine epoll"),
        (["--engine", "io_uring"], "io_uring"),
    ],
)
def test_uring_refuses_what_it_does_not_serve(args, fragment):
    assert_one_line_error(run_serve("--port", "0", "--engine", "uring", *args), fragment)


@pytest.mark.timeout(30)
def test_uring_refuses_a_cpu_other_than_x86_64(monkeypatch):
    monkeypatch.setattr(ring.platform, "machine", lambda: "aarch64")
    result = _serve_in_process()
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "fastsock: --engine uring needs an x86-64 CPU (this is aarch64): it writes the rings "
        "from Python without memory barriers"
    ]


def _failing_setup(err: int):
    def syscall(*args: int) -> int:
        ctypes.set_errno(err)
        return -1

    return lambda: syscall


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("err", "fragment"),
    [
        (errno.ENOSYS, "seccomp"),
        (errno.EPERM, "io_uring_disabled"),
        (errno.EINVAL, "Linux >= 6.1"),
    ],
)
def test_uring_unavailable_is_one_line_and_exit_2(monkeypatch, err, fragment):
    monkeypatch.setattr(ring, "_libc_syscall", _failing_setup(err))
    result = _serve_in_process()
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastsock: --engine uring is unavailable: ")
    assert fragment in lines[0]
    assert "Traceback" not in result.output
