"""``fastsock load`` as users run it: exit codes, one-line errors, JSON output."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.conftest import assert_one_line_error
from tests.load.conftest import free_tcp_port

LOAD = [sys.executable, "-m", "fastsock", "load"]
QUICK = ["--duration", "0.3", "--warmup", "0.1", "--conns", "2"]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*LOAD, *args], capture_output=True, text=True, timeout=timeout)


def test_json_to_stdout_and_summary_to_stderr(fastsock_server) -> None:
    server = fastsock_server("echo", "unix")
    proc = run("--unix", server.endpoint.path, *QUICK, "--json", "-")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["messages"] > 0 and result["errors"]["total"] == 0
    assert "fastsock load: echo 64B" in proc.stderr
    assert "load" in result["metadata"]["command_line"]


def test_json_file_and_size_suffix(fastsock_server, tmp_path) -> None:
    server = fastsock_server("echo", "tcp")
    out = tmp_path / "r.json"
    proc = run("--port", str(server.endpoint.port), *QUICK, "--size", "4KiB", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "throughput" in proc.stdout
    result = json.loads(out.read_text())
    assert result["params"]["size"] == 4096
    assert result["bytes"] == result["messages"] * 4096


def test_abstract_unix_socket(fastsock_server, tmp_path) -> None:
    name = f"@fastsock-load-test-{tmp_path.name}"
    from fastsock.process import ServerProcess

    with ServerProcess([sys.executable, "-m", "fastsock", "serve", "--unix", name]) as server:
        proc = run("--unix", name, *QUICK, "-q", "--json", "-")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["params"]["endpoint"] == f"unix:{name}"
        assert server.alive()


def test_errors_make_exit_1(misbehaving) -> None:
    server = misbehaving("tcp", corrupt_at=100)
    proc = run("--port", str(server.endpoint.port), *QUICK)
    assert proc.returncode == 1, proc.stderr
    assert "mismatch 1" in proc.stdout


def test_refused_is_exit_2() -> None:
    proc = run("--port", str(free_tcp_port()), *QUICK)
    assert_one_line_error(proc, "connection refused")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_no_such_socket_is_exit_2(tmp_path) -> None:
    proc = run("--unix", str(tmp_path / "missing.sock"), *QUICK)
    assert_one_line_error(proc, "no such socket")


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--port", "1", "--size", "0"], "--size"),
        (["--port", "1", "--size", "17M"], "--size"),
        (["--port", "1", "--size", "lots"], "size"),
        (["--port", "1", "--conns", "0"], "--conns"),
        (["--port", "1", "--conns", "2", "--procs", "3"], "--procs"),
        (["--port", "1", "--rate", "10", "--depth", "2"], "--depth"),
        (["--port", "1", "--rate", "-5"], "--rate"),
        (["--port", "1", "--unix", "/tmp/x.sock"], "not both"),
        ([], "--port"),
        (["--port", "1", "--workload", "ping"], "--workload"),
        (["--port", "1", "--host", "example.com"], "IPv4 or IPv6"),
        (["--port", "1", "--engine", "turbo"], "--engine"),
        (["--port", "1", "--engine", "native", "--http", "/f"], "--engine native"),
    ],
)
def test_nonsense_is_a_usage_error(args: list[str], text: str) -> None:
    proc = run(*args, "--duration", "0.1")
    assert_one_line_error(proc, text)


@pytest.mark.timeout(60)
def test_interrupt_stops_a_long_run(fastsock_server, engine: str) -> None:
    # ^C during the measurement (the native engine runs in C with the GIL released) stops the
    # run at once with exit status 130, not after --duration.
    server = fastsock_server("echo", "unix")
    argv = [*LOAD, "--unix", server.endpoint.path, "--conns", "2", "--duration", "40"]
    # A shell starts background jobs with SIGINT ignored, and Python keeps an ignored SIGINT
    # ignored (as it should: nohup'd and & jobs are not meant to get ^C); `make test &` would
    # then hand that to the client. It gets the default, as from a terminal.
    proc = subprocess.Popen(
        [*argv, "--engine", engine],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        me = psutil.Process(proc.pid)
        deadline = time.monotonic() + 20
        # Connected means the run has started (or is about to): then interrupt it.
        while len(me.net_connections(kind="unix")) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
