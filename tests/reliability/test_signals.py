"""Issue 15, item 4: signals while ``fastsock load`` runs a closed loop against the server.

SIGTERM mid-run: the server stops accepting but lets the open connections finish; the load run
completes with no error, the server exits 0 once they are closed and its socket file is gone.
SIGKILL leaves a stale socket file, which the next ``fastsock serve`` on that path replaces.
Both with one process and with ``--workers 4``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import psutil
import pytest

from fastsock.address import connect
from tests.conftest import FASTSOCK, parse_stats

CONNS = 8


def server_processes(pid: int) -> list[psutil.Process]:
    parent = psutil.Process(pid)
    return [parent, *parent.children()]


def open_fds(pid: int) -> int:
    total = 0
    for proc in server_processes(pid):
        try:
            total += proc.num_fds()
        except psutil.NoSuchProcess:
            pass
    return total


def wait_for_connections(pid: int, baseline: int, count: int, timeout: float = 20) -> None:
    """Until the server (all its workers together) holds ``count`` descriptors more than at
    ``baseline``: the load's connections are accepted and it is mid-run."""
    deadline = time.monotonic() + timeout
    while open_fds(pid) < baseline + count:
        if time.monotonic() > deadline:
            raise AssertionError(f"the server never held {count} connections")
        time.sleep(0.02)


@pytest.fixture(params=["1", "4"])
def workers(request: pytest.FixtureRequest) -> str:
    """--workers: one process, and a parent with four workers sharing the listener."""
    return request.param


def start_load(path: str, duration: float) -> subprocess.Popen:
    return subprocess.Popen(
        [*FASTSOCK, "load", "--unix", path, "--conns", str(CONNS), "--depth", "4"]
        + ["--size", "16K", "--duration", str(duration), "--warmup", "0.2", "--json", "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.timeout(60)
def test_sigterm_mid_load_run_drains_and_exits_zero(serve, tmp_path, workers):
    path = tmp_path / "term.sock"
    server = serve("--unix", str(path), "--workers", workers, "--drain-timeout", "30")
    baseline = open_fds(server.pid)
    load = start_load(str(path), duration=2.0)
    try:
        wait_for_connections(server.pid, baseline, CONNS)
        os.kill(server.pid, signal.SIGTERM)  # mid-run: every connection has echoes in flight
        out, err = load.communicate(timeout=30)
    finally:
        load.kill()
    ended = time.monotonic()
    code = server.proc.wait(timeout=30)
    waited = time.monotonic() - ended
    assert server.stop() == 0 and code == 0
    result = json.loads(out)
    lines = [line for line in server.stderr_text.splitlines() if line.startswith("fastsock: stats")]
    stats = [parse_stats(line) for line in lines]
    print(
        f"\nworkers={workers}: load {result['messages']} messages, errors "
        f"{result['errors']['total']}; server exit {code} {waited:.2f} s after the load ended; "
        f"resets {[s['resets'] for s in stats]}"
    )
    assert load.returncode == 0, err
    assert result["errors"]["total"] == 0 and result["messages"] > 0
    assert len(stats) == int(workers)
    assert sum(s["resets"] + s["errors"] for s in stats) == 0
    assert sum(s["closed"] for s in stats) == CONNS
    assert not path.exists(), "the socket file must be gone after a drain"


@pytest.mark.timeout(60)
def test_drain_timeout_bounds_the_wait_for_a_long_run(serve, tmp_path):
    path = tmp_path / "short.sock"
    server = serve("--unix", str(path), "--drain-timeout", "0.5")
    baseline = open_fds(server.pid)
    load = start_load(str(path), duration=20.0)
    try:
        wait_for_connections(server.pid, baseline, CONNS)
        signalled = time.monotonic()
        os.kill(server.pid, signal.SIGTERM)
        code = server.proc.wait(timeout=20)
        took = time.monotonic() - signalled
        load.communicate(timeout=30)  # the server closed on it: the run ends early, with errors
    finally:
        load.kill()
    print(f"\nexit {code} {took:.2f} s after SIGTERM with --drain-timeout 0.5")
    assert code == 0
    assert took < 10, "the drain outlived --drain-timeout by far"
    assert load.returncode == 1  # closed connections are errors for the client
    assert not path.exists()


@pytest.mark.timeout(60)
def test_sigkill_leaves_a_stale_socket_that_the_next_server_replaces(serve, tmp_path, workers):
    path = tmp_path / "kill.sock"
    # The orphaned workers drain the load's connections: keep that short.
    first = serve("--unix", str(path), "--workers", workers, "--drain-timeout", "1")
    procs = server_processes(first.pid)
    baseline = open_fds(first.pid)
    load = start_load(str(path), duration=20.0)
    try:
        wait_for_connections(first.pid, baseline, CONNS)
        os.kill(first.pid, signal.SIGKILL)  # the parent only, as an OOM kill would
        # Workers follow their parent (they get SIGTERM when it dies); wait until all are gone.
        gone, alive = psutil.wait_procs(procs, timeout=20)
        assert not alive, f"{len(alive)} processes outlived a SIGKILLed parent"
        load.communicate(timeout=30)
    finally:
        load.kill()
    assert path.exists(), "SIGKILL cannot remove the socket file"
    second = serve("--unix", str(path), "--workers", workers)
    with connect(second.endpoint, timeout=10) as sock:
        sock.sendall(b"after")
        assert sock.recv(5) == b"after"
    assert second.stop() == 0
    print(f"\nworkers={workers}: stale socket replaced; {len(gone)} processes gone after SIGKILL")
