"""Validators and the request headers that use them: ETag, dates, 304, Range and If-Range.

RFC 9110 sections 8.8 (validators), 13 (conditional requests) and 14 (range requests), for one
representation per file and a single byte range.
"""

from __future__ import annotations

import time
from email.utils import formatdate, parsedate_to_datetime

# parse_range() results besides a (start, end) pair.
IGNORE = None  # no usable Range: send the whole file (200)
UNSATISFIABLE = (-1, -1)  # a valid range outside the file: 416

_MAX_DIGITS = 19  # larger numbers are beyond any file; treat them as invalid, not as bignums


def make_etag(size: int, mtime_ns: int) -> str:
    """A strong validator from size and modification time (nginx's scheme, finer-grained)."""
    return f'"{mtime_ns:x}-{size:x}"'


def http_date(seconds: float) -> str:
    """IMF-fixdate, e.g. ``Sun, 06 Nov 1994 08:49:37 GMT``."""
    return formatdate(seconds, usegmt=True)


def parse_http_date(value: bytes) -> int | None:
    """Seconds since the epoch, or None when the date does not parse (then it is ignored)."""
    try:
        return int(parsedate_to_datetime(value.decode("latin-1")).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _etags(value: bytes) -> list[bytes]:
    return [tag.strip() for tag in value.split(b",") if tag.strip()]


def not_modified(
    if_none_match: bytes | None, if_modified_since: bytes | None, etag: str, mtime: int
) -> bool:
    """Should a GET/HEAD be answered 304? If-None-Match wins over If-Modified-Since.

    If-None-Match uses the weak comparison (``W/"x"`` matches ``"x"``); ``*`` matches any file.
    If-Modified-Since compares whole seconds, as HTTP dates have no more.
    """
    if if_none_match is not None:
        tag = etag.encode()
        for candidate in _etags(if_none_match):
            if candidate == b"*" or candidate.removeprefix(b"W/") == tag:
                return True
        return False
    if if_modified_since is not None:
        since = parse_http_date(if_modified_since)
        return since is not None and mtime <= since
    return False


def if_range_allows(if_range: bytes | None, etag: str, mtime: int) -> bool:
    """Does an If-Range header (if any) let the Range apply? Strong comparison only."""
    if if_range is None:
        return True
    value = if_range.strip()
    if value.startswith((b'"', b"W/")):
        return value == etag.encode()
    since = parse_http_date(value)
    return since is not None and since == mtime


def parse_range(value: bytes, size: int) -> tuple[int, int] | None:
    """One ``bytes=`` range of a ``size``-byte file -> (first, last) inclusive.

    Returns :data:`IGNORE` for what we do not honour (another unit, several ranges, bad
    syntax: RFC 9110 lets a server ignore Range and send 200) and :data:`UNSATISFIABLE` for a
    well-formed range that selects nothing (416).
    """
    unit, sep, spec = value.partition(b"=")
    if not sep or unit.strip().lower() != b"bytes" or b"," in spec:
        return IGNORE
    first_s, dash, last_s = spec.strip().partition(b"-")
    if not dash:
        return IGNORE
    first_s, last_s = first_s.strip(), last_s.strip()
    if not _is_number(first_s) and first_s:
        return IGNORE
    if not _is_number(last_s) and last_s:
        return IGNORE
    if not first_s:  # suffix: the last N bytes
        if not last_s:
            return IGNORE
        suffix = int(last_s)
        if suffix == 0 or size == 0:
            return UNSATISFIABLE
        return max(0, size - suffix), size - 1
    first = int(first_s)
    last = int(last_s) if last_s else size - 1
    if last_s and last < first:
        return IGNORE
    if first >= size:
        return UNSATISFIABLE
    return first, min(last, size - 1)


def _is_number(text: bytes) -> bool:
    return 0 < len(text) <= _MAX_DIGITS and text.isdigit()


class DateCache:
    """The ``Date`` header value, formatted once per second rather than once per response."""

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._value = http_date(second)
        return self._value
