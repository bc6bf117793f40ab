"""The run's timeline: its phases, and the open-loop schedule that latency counts from."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastsock.load.schedule import DueTimes, phases


def test_phases_are_the_warmup_then_the_measured_window() -> None:
    t0 = 5_000_000_000
    assert phases(t0, warmup=0.5, duration=2.0) == (t0 + 500_000_000, t0 + 2_500_000_000)
    assert phases(t0, warmup=0.0, duration=0.001) == (t0, t0 + 1_000_000)


@settings(max_examples=50, deadline=None)
@given(rate=st.floats(0.5, 5e6), t0=st.integers(0, 10**15), n=st.integers(1, 5000))
def test_due_time_k_is_t0_plus_k_intervals_without_drift(rate: float, t0: int, n: int) -> None:
    """Each due time is computed from t0, never accumulated: after n messages the schedule is
    where n intervals put it, to the nanosecond, and it never runs backwards."""
    due = DueTimes(t0, rate)
    interval = 1e9 / rate
    previous = t0
    for k in range(n):
        assert due.count == k
        got = due.advance()
        assert got == t0 + int(k * interval)
        assert got >= previous
        previous = got
    assert due.next == t0 + int(n * interval)


def test_a_million_due_times_at_three_per_second_end_where_they_should() -> None:
    """An interval of 333,333,333.3 ns: adding it up as an int would lose a third of a ns per
    message (333 µs after a million); computing from t0 loses nothing."""
    due = DueTimes(0, 3.0)
    for _ in range(1_000_000):
        due.advance()
    assert due.next == pytest.approx(1_000_000 / 3 * 1e9, abs=1)
