"""Latency recording: the batched recorder equals HdrHistogram's own recording."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastsock.load.histogram import (
    HIGHEST_NS,
    LatencyRecorder,
    encode,
    mean_stdev_ns,
    merge,
    new_histogram,
    spectrum_us,
    summary_us,
)

latencies = st.lists(st.integers(0, 10**13), min_size=1, max_size=500)


@settings(max_examples=60, deadline=None)
@given(values=latencies)
def test_recorder_equals_record_value(values: list[int]) -> None:
    recorder = LatencyRecorder()
    expected = new_histogram()
    for i, v in enumerate(values):
        recorder.values.append(v)
        if i % 97 == 0:
            recorder.fold()  # folding in the middle changes nothing
        expected.record_value(min(max(v, 1), HIGHEST_NS))
    got = recorder.histogram()
    assert got.get_total_count() == len(values)
    assert list(got.counts) == list(expected.counts)
    assert got.get_max_value() == expected.get_max_value()
    assert got.get_min_value() == expected.get_min_value()


def test_reset_forgets() -> None:
    recorder = LatencyRecorder()
    recorder.values.extend([1000] * 10)
    recorder.fold()
    recorder.values.append(5)
    recorder.reset()
    assert recorder.histogram().get_total_count() == 0


def test_merge_adds_counts() -> None:
    a, b = LatencyRecorder(), LatencyRecorder()
    a.values.extend([10_000] * 99)
    b.values.extend([5_000_000])
    merged = merge([a.encoded(), b.encoded()])
    assert merged.get_total_count() == 100
    summary = summary_us(merged)
    assert summary["count"] == 100
    assert 9.9 <= summary["p50"] <= 10.1
    assert 4990 <= summary["max"] <= 5010  # µs, within HDR's 3 significant figures
    assert summary["min"] <= summary["p50"] <= summary["p99"] <= summary["max"]
    # The encoded merge decodes to the same counts.
    again = merge([encode(merged)])
    assert list(again.counts) == list(merged.counts)


def test_spectrum_is_monotonic_and_ends_at_the_max() -> None:
    recorder = LatencyRecorder()
    recorder.values.extend(range(1000, 200_000, 7))
    hist = recorder.histogram()
    points = spectrum_us(hist)
    assert len(points) > 20
    pcts = [p for p, _ in points]
    vals = [v for _, v in points]
    assert pcts == sorted(pcts) and vals == sorted(vals)
    assert points[-1] == [100.0, hist.get_max_value() / 1000.0]


def test_empty_summary_is_all_none() -> None:
    summary = summary_us(new_histogram())
    assert summary["count"] == 0 and summary["p99"] is None
    assert spectrum_us(new_histogram()) == []


# hdrh's own mean/stdev walk every bucket in Python (~0.4 s): few examples, no deadline.
@settings(deadline=None, max_examples=15)
@given(st.lists(st.integers(1, 10**10), min_size=1, max_size=300))
def test_mean_stdev_match_hdrh(values):
    hist = new_histogram()
    for v in values:
        hist.record_value(v)
    mean, stdev = mean_stdev_ns(hist)
    assert mean == pytest.approx(hist.get_mean_value(), rel=1e-12)
    assert stdev == pytest.approx(hist.get_stddev(), rel=1e-9, abs=1e-9)
