"""The error log every engine counts into: every kind present, samples capped, cleared in place."""

from __future__ import annotations

from fastsock.load.verify import ERROR_KINDS, MAX_ERROR_SAMPLES, ErrorLog


def test_every_kind_starts_at_zero() -> None:
    log = ErrorLog()
    assert log.counts == {kind: 0 for kind in ERROR_KINDS}
    assert log.samples == []


def test_counts_grow_but_samples_stop_at_the_cap() -> None:
    log = ErrorLog()
    kept = [log.add("mismatch", f"conn {i}: byte 7 differs") for i in range(MAX_ERROR_SAMPLES)]
    assert all(kept)
    assert log.add("reset", "conn 99: reset", count=5) is False  # counted, not kept
    assert log.counts["mismatch"] == MAX_ERROR_SAMPLES
    assert log.counts["reset"] == 5
    assert len(log.samples) == MAX_ERROR_SAMPLES
    assert log.samples[0] == "conn 0: byte 7 differs"


def test_clear_forgets_everything_in_place() -> None:
    log = ErrorLog()
    counts, samples = log.counts, log.samples  # an engine may hold these
    log.add("closed", "conn 1: closed early", count=3)
    log.clear()
    assert counts is log.counts and samples is log.samples
    assert counts == {kind: 0 for kind in ERROR_KINDS}
    assert samples == []
