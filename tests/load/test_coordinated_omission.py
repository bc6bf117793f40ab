"""Coordinated omission: a server paused for a known interval (SIGSTOP ... SIGCONT).

Open loop measures from each message's scheduled time, so the pause shows in the tail: every
message due during the pause waits for its end (a quarter of the messages here). Closed loop
sends nothing while its few messages in flight are stuck, so the pause hides in the max and
leaves p99 alone. That difference is the point of the open loop, and what this test pins down.
The assertions compare with the pause, never with a speed, and leave wide margins.
"""

from __future__ import annotations

import os
import signal
import threading

import pytest

from fastsock.load import run_load
from fastsock.process import stop_for_a_while
from tests.load.conftest import quick_config

PAUSE = 0.5
WARMUP = 0.2
DURATION = 2.0


def pause_later(pid: int, delay: float) -> tuple[threading.Thread, threading.Event]:
    """Stop ``pid`` after ``delay`` seconds for at least PAUSE seconds; always continue it."""
    paused = threading.Event()
    return stop_for_a_while(pid, delay, PAUSE, paused), paused


def run_with_pause(
    server, engine: str, at: float = WARMUP + 0.5, errors_allowed: bool = False, **overrides
) -> dict:
    """A load run during which the server stops for PAUSE seconds, ``at`` seconds after the
    start (by default 0.7 s: after the warm-up, well before the end of the window)."""
    thread, paused = pause_later(server.pid, at)
    try:
        result = run_load(
            quick_config(
                server.endpoint,
                conns=4,
                warmup=WARMUP,
                duration=DURATION,
                **overrides,
                engine=engine,
            )
        )
    finally:
        thread.join(timeout=10)
        os.kill(server.pid, signal.SIGCONT)
    assert paused.is_set()
    assert errors_allowed or result["errors"]["total"] == 0
    return result


@pytest.mark.timeout(90)
@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_open_loop_shows_the_pause_closed_loop_hides_it(
    fastsock_server, transport, engine: str
) -> None:
    server = fastsock_server("echo", transport)
    open_lat = run_with_pause(server, engine, rate=1000.0)["latency_us"]
    closed_lat = run_with_pause(server, engine)["latency_us"]
    pause_us = PAUSE * 1e6

    # Open loop: the first message due after SIGSTOP waits the whole pause...
    assert open_lat["max"] >= 0.9 * pause_us
    # ...and ~25% of the messages were due during it, with waits spread over 0..PAUSE.
    assert open_lat["p99"] >= 0.5 * pause_us
    assert open_lat["p90"] >= 0.1 * pause_us

    # Closed loop: only the 4 messages in flight saw the pause.
    assert closed_lat["max"] >= 0.9 * pause_us
    assert closed_lat["p99"] < 0.2 * pause_us
    assert open_lat["p99"] > 2 * closed_lat["p99"]


@pytest.mark.timeout(60)
def test_a_stall_at_the_end_is_not_lost(fastsock_server, engine: str) -> None:
    # The server stops 0.3 s before the window closes: the messages due since then never come
    # back in time, and are recorded with their age at the end instead of being dropped.
    server = fastsock_server("echo", "unix")
    at = WARMUP + DURATION - 0.3
    result = run_with_pause(server, engine, at=at, errors_allowed=True, rate=1000.0)
    lat = result["latency_us"]
    assert lat["incomplete"] > 0
    assert lat["count"] == result["messages"] + lat["incomplete"]
    assert lat["max"] >= 0.5 * 0.3e6
