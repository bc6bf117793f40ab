"""ETag, dates, 304 and single ranges (RFC 9110 sections 13 and 14)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastsock.http.conditional import (
    IGNORE,
    UNSATISFIABLE,
    DateCache,
    http_date,
    if_range_allows,
    make_etag,
    not_modified,
    parse_http_date,
    parse_range,
)

ETAG = make_etag(1000, 1_700_000_000_123_456_789)
MTIME = 1_700_000_000


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (b"bytes=0-0", 10, (0, 0)),
        (b"bytes=0-9", 10, (0, 9)),
        (b"bytes=2-", 10, (2, 9)),
        (b"bytes=5-100", 10, (5, 9)),  # last clipped to the file
        (b"bytes=-3", 10, (7, 9)),
        (b"bytes=-30", 10, (0, 9)),  # suffix longer than the file: all of it
        (b"Bytes = 1-2", 10, (1, 2)),
        (b"bytes=10-", 10, UNSATISFIABLE),
        (b"bytes=10-20", 10, UNSATISFIABLE),
        (b"bytes=-0", 10, UNSATISFIABLE),
        (b"bytes=0-", 0, UNSATISFIABLE),
        (b"bytes=-5", 0, UNSATISFIABLE),
        (b"bytes=5-2", 10, IGNORE),  # invalid: ignored, whole file
        (b"bytes=0-1,3-4", 10, IGNORE),  # several ranges: we send 200
        (b"items=0-1", 10, IGNORE),
        (b"bytes=", 10, IGNORE),
        (b"bytes=-", 10, IGNORE),
        (b"bytes=a-b", 10, IGNORE),
        (b"bytes=+1-2", 10, IGNORE),
        (b"bytes=1", 10, IGNORE),
        (b"bytes=" + b"9" * 40 + b"-", 10, IGNORE),
    ],
)
def test_parse_range(header, size, expected):
    assert parse_range(header, size) == expected


@given(st.integers(0, 10_000), st.integers(0, 20_000), st.integers(0, 20_000))
def test_parse_range_result_always_lies_in_the_file(size, a, b):
    for header in (f"bytes={a}-{b}", f"bytes={a}-", f"bytes=-{b}"):
        got = parse_range(header.encode(), size)
        if got is IGNORE or got == UNSATISFIABLE:
            continue
        first, last = got
        assert 0 <= first <= last < size


def test_if_none_match_uses_weak_comparison_and_star():
    assert not_modified(ETAG.encode(), None, ETAG, MTIME)
    assert not_modified(b"W/" + ETAG.encode(), None, ETAG, MTIME)
    assert not_modified(b'"other", ' + ETAG.encode(), None, ETAG, MTIME)
    assert not_modified(b"*", None, ETAG, MTIME)
    assert not not_modified(b'"other"', None, ETAG, MTIME)


def test_if_none_match_wins_over_if_modified_since():
    later = http_date(MTIME + 10).encode()
    assert not not_modified(b'"other"', later, ETAG, MTIME)


def test_if_modified_since_compares_whole_seconds():
    assert not_modified(None, http_date(MTIME).encode(), ETAG, MTIME)
    assert not_modified(None, http_date(MTIME + 1).encode(), ETAG, MTIME)
    assert not not_modified(None, http_date(MTIME - 1).encode(), ETAG, MTIME)
    assert not not_modified(None, b"not a date", ETAG, MTIME)
    assert not not_modified(None, None, ETAG, MTIME)


def test_if_range_needs_a_strong_match_or_the_exact_date():
    assert if_range_allows(None, ETAG, MTIME)
    assert if_range_allows(ETAG.encode(), ETAG, MTIME)
    assert not if_range_allows(b"W/" + ETAG.encode(), ETAG, MTIME)
    assert not if_range_allows(b'"stale"', ETAG, MTIME)
    assert if_range_allows(http_date(MTIME).encode(), ETAG, MTIME)
    assert not if_range_allows(http_date(MTIME + 1).encode(), ETAG, MTIME)
    assert not if_range_allows(b"garbage", ETAG, MTIME)


def test_dates_round_trip_and_the_cache_formats_imf_fixdate():
    assert parse_http_date(http_date(MTIME).encode()) == MTIME
    assert parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT") == 784111777
    assert DateCache().now().endswith(" GMT")


def test_etag_changes_with_size_and_mtime():
    assert make_etag(1, 2) != make_etag(1, 3) != make_etag(2, 3)
    assert make_etag(1, 2).startswith('"') and make_etag(1, 2).endswith('"')
