"""The payload pattern: any split of the stream verifies, and any corruption is caught."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fastsock.load.pattern import PRIMES, Pattern


def stream(p: Pattern, seed: int, start: int, length: int) -> bytes:
    """Stream bytes the slow, obvious way."""
    base = p.data[: p.period]
    return bytes(base[(seed + i) % p.period] for i in range(start, start + length))


@settings(max_examples=50, deadline=None)
@given(
    size=st.integers(1, 5000),
    conn=st.integers(0, 10_000),
    start=st.integers(0, 10**7),
    length=st.integers(1, 3000),
)
def test_any_chunk_of_the_stream_matches(size: int, conn: int, start: int, length: int) -> None:
    p = Pattern(size, span=4096)
    seed = p.seed_for(conn)
    chunk = stream(p, seed, start, length)
    assert p.matches(memoryview(chunk), seed, start)
    off = p.offset(seed, start)
    assert bytes(p.view[off : off + length]) == chunk  # what the sender slices is the stream


@settings(max_examples=50, deadline=None)
@given(size=st.integers(1, 300), start=st.integers(0, 10**6), data=st.data())
def test_a_flipped_byte_marks_exactly_its_message(size: int, start: int, data) -> None:
    p = Pattern(size, span=4096)
    seed = p.seed_for(3)
    length = data.draw(st.integers(1, 2000))
    chunk = bytearray(stream(p, seed, start, length))
    where = data.draw(st.integers(0, length - 1))
    chunk[where] ^= 0x01
    assert not p.matches(memoryview(chunk), seed, start)
    assert p.bad_messages(memoryview(chunk), seed, start, size) == [(start + where) // size]


def test_shifted_or_foreign_messages_are_caught() -> None:
    size = 64
    p = Pattern(size)
    seed = p.seed_for(0)
    # Message 1 where message 0 was expected (message 0 lost).
    assert not p.matches(memoryview(stream(p, seed, size, size)), seed, 0)
    # Message 0 repeated where message 1 was expected.
    assert not p.matches(memoryview(stream(p, seed, 0, size)), seed, size)
    # Connection 1's message 0 on connection 0.
    other = p.seed_for(1)
    assert not p.matches(memoryview(stream(p, other, 0, size)), seed, 0)


def test_period_never_divides_the_size() -> None:
    for size in (PRIMES[0], 2 * PRIMES[0], PRIMES[1], 64):
        assert size % Pattern(size).period != 0
