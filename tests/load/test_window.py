"""The measured window: its edges, the CPU read at them, and what a worker returns."""

from __future__ import annotations

import os
import time

from fastsock.load.cpu import CpuTimes
from fastsock.load.window import (
    LATENCY_WORKLOADS,
    Window,
    age_unanswered,
    messages_and_bytes,
    worker_result,
)


def _burn_cpu(seconds: float = 0.05) -> None:
    """Some CPU time, several clock ticks of it: os.times() and /proc count CPU time in ticks
    (10 ms), and a fixed amount of work could fit inside one (that failed 1 run in 3)."""
    start = time.process_time()
    while time.process_time() - start < seconds:
        sum(i * i for i in range(10_000))


def test_the_window_measures_this_process_and_no_server_without_a_pid() -> None:
    window = Window(server_pid=None)
    window.begin(1_000)
    _burn_cpu()  # some CPU time inside the window
    window.close(5_000)
    assert window.elapsed_ns == 4_000
    assert window.cpu.user + window.cpu.sys > 0
    assert window.server is None


def test_the_window_measures_the_server_when_it_has_its_pid() -> None:
    window = Window(server_pid=os.getpid())  # this process stands in for the server
    window.begin(0)
    _burn_cpu()
    window.close(1)
    server = window.server
    assert server is not None
    assert server.user + server.sys > 0


def test_messages_in_flight_at_the_close_are_recorded_by_their_age() -> None:
    recorded: list[int] = []
    pending = [[100, 400], [], [900]]  # send or due times per connection
    assert age_unanswered(recorded.append, 1_000, pending) == 3
    assert recorded == [900, 600, 100]


def test_an_engine_count_is_messages_for_latency_workloads_and_bytes_otherwise() -> None:
    assert set(LATENCY_WORKLOADS) == {"echo", "http"}
    assert messages_and_bytes("echo", 10, 64) == (10, 640)
    assert messages_and_bytes("http", 3, 1000) == (3, 3000)
    assert messages_and_bytes("source", 6400, 64) == (100, 6400)
    assert messages_and_bytes("discard", 6500, 64) == (101, 6500)


def test_worker_result_has_one_shape_with_or_without_server_cpu() -> None:
    common = dict(
        messages=5, nbytes=320, elapsed_ns=10, errors={"reset": 1}, error_samples=["x"],
        histogram=None, incomplete=2, conns_alive=3, cpu=CpuTimes(0.5, 0.25),
    )  # fmt: skip
    without = worker_result(**common, server=None)
    with_server = worker_result(**common, server=CpuTimes(1.0, 2.0))
    assert without.keys() == with_server.keys()
    assert (without["server_user_s"], without["server_sys_s"]) == (None, None)
    assert (with_server["server_user_s"], with_server["server_sys_s"]) == (1.0, 2.0)
    assert (without["cpu_user_s"], without["cpu_sys_s"]) == (0.5, 0.25)
    assert without["incomplete"] == 2 and without["conns_alive"] == 3
