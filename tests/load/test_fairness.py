"""per_connection: Jain's index and the min/p50/max of messages per connection, as arithmetic
on known counts, as merged from workers, and as measured by both engines against real servers
(one of which starves a connection on purpose)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from fastsock.address import unix_endpoint
from fastsock.load import run_load
from fastsock.load.fairness import jain_index, per_connection
from fastsock.load.report import fairness_line
from fastsock.load.window import window_counts
from tests.load.conftest import quick_config


def test_equal_shares_are_perfectly_fair() -> None:
    assert jain_index([7, 7, 7, 7]) == 1.0
    assert per_connection([5, 5]) == {"conns": 2, "min": 5, "p50": 5.0, "max": 5, "jain": 1.0}


@pytest.mark.parametrize("n", [1, 2, 10, 8000])
def test_one_connection_with_everything_is_one_over_n(n: int) -> None:
    counts = [0] * n
    counts[-1] = 1234
    assert jain_index(counts) == pytest.approx(1 / n)
    fair = per_connection(counts)
    assert fair is not None
    assert (fair["min"], fair["max"], fair["conns"]) == (0 if n > 1 else 1234, 1234, n)


def test_zeros_count() -> None:
    # Two connections share 10 messages, two got none: (10)^2 / (4 * 50) = 0.5.
    assert jain_index([5, 5, 0, 0]) == pytest.approx(0.5)
    assert per_connection([5, 5, 0, 0])["p50"] == 2.5  # the mean of the middle two
    assert per_connection([3, 0, 9]) == {
        "conns": 3,
        "min": 0,
        "p50": 3.0,
        "max": 9,
        "jain": pytest.approx(144 / (3 * 90)),
    }


def test_nothing_counted() -> None:
    assert jain_index([]) is None
    assert jain_index([0, 0, 0]) is None  # 0/0: nothing to be fair about
    assert per_connection([]) is None
    fair = per_connection([0, 0])
    assert fair == {"conns": 2, "min": 0, "p50": 0.0, "max": 0, "jain": None}
    assert "n/a" in fairness_line(fair)


def test_window_counts_are_messages() -> None:
    assert window_counts([1, 10], [4, 30], "echo", 64) == [3, 20]
    # stream workloads count bytes; a message is size bytes (the total does the same)
    assert window_counts([0, 100], [4096 * 3 + 5, 100 + 4096], "send", 4096) == [3, 1]
    assert window_counts(None, [9, 9], "echo", 64) == [0, 0]  # no window began


def test_summary_flags_an_uneven_run() -> None:
    assert "UNEVEN" in fairness_line(per_connection([100, 100, 0]))
    assert "UNEVEN" not in fairness_line(per_connection([100, 99, 101]))


def check_per_connection(result: dict, conns: int) -> dict:
    """The per_connection object agrees with the run's totals."""
    fair = result["per_connection"]
    assert fair is not None
    assert fair["conns"] == conns
    assert fair["min"] <= fair["p50"] <= fair["max"]
    assert fair["min"] * conns <= result["messages"] <= fair["max"] * conns
    return fair


@pytest.mark.parametrize("rate", [None, 800.0])
def test_both_engines_count_per_connection(fastsock_server, engine: str, rate) -> None:
    server = fastsock_server("echo", "unix")
    result = run_load(quick_config(server.endpoint, conns=8, procs=2, rate=rate, engine=engine))
    assert result["errors"]["total"] == 0, result["error_samples"]
    fair = check_per_connection(result, 8)
    assert fair["min"] > 0
    assert 0 < fair["jain"] <= 1.0
    if rate is not None:
        # Open loop: messages go round-robin over the connections, so shares differ by at most
        # one message per process (plus what was still in flight at the window's edges).
        assert fair["max"] - fair["min"] <= 4


@pytest.mark.parametrize("workload,mode", [("send", "discard"), ("recv", "source")])
def test_stream_workloads_count_messages(fastsock_server, engine: str, workload, mode) -> None:
    server = fastsock_server(mode, "unix")
    result = run_load(quick_config(server.endpoint, size=4096, workload=workload, engine=engine))
    assert result["errors"]["total"] == 0, result["error_samples"]
    check_per_connection(result, 4)


@pytest.fixture
def starving_server(tmp_path) -> Iterator[str]:
    """A UNIX echo server that never answers the first connection it accepts."""
    path = str(tmp_path / "starve.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(16)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    accepted: list[socket.socket] = []

    def echo(sock: socket.socket) -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            sock.sendall(data)

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(sock)
            if len(accepted) > 1:  # the first one is left unanswered
                t = threading.Thread(target=echo, args=(sock,), daemon=True)
                t.start()
                threads.append(t)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    yield path
    stop.set()
    acceptor.join(5)
    for t in threads:
        t.join(5)
    for s in accepted:
        s.close()
    listener.close()


def test_a_starved_connection_shows(starving_server: str, engine: str) -> None:
    result = run_load(quick_config(unix_endpoint(starving_server), conns=4, engine=engine))
    fair = check_per_connection(result, 4)
    assert fair["min"] == 0
    assert fair["max"] > 0
    # 3 of 4 served: at most 0.75 (when those 3 share evenly; threads in one process do not)
    assert 0.25 < fair["jain"] <= 0.75 + 1e-9
