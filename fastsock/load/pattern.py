"""The payload every connection sends, and how an echo is checked against it without copies.

Each connection's byte stream is a periodic random sequence: stream byte ``n`` of connection
``c`` is ``PATTERN[(seed(c) + n) % PERIOD]``. Message ``i`` is stream bytes
``[i*size, (i+1)*size)``, so its offset in the pattern works as its sequence number: a lost,
repeated, reordered or foreign message lands at the wrong offset and fails the comparison
(``PERIOD`` is prime and does not divide ``size``, so a shift of k messages goes unnoticed only
when k is a multiple of ``PERIOD``). Random bytes make any shift visible, unlike a counter pattern
whose bytes repeat every 256.

The pattern buffer is ``PERIOD + SPAN`` long, so every slice of up to ``SPAN`` bytes starting at
an offset below ``PERIOD`` is contiguous: sending is ``sock.send(view[off:off+n])`` and checking a
received chunk is ``PATTERN.startswith(chunk_view, off)`` — one memcmp, no ``bytes`` per message.
"""

from __future__ import annotations

import random

PRIMES = (65521, 65537)  # two primes; a size (<= 16 MiB) is a multiple of at most one
SPAN = 1 << 20  # the longest slice sent or checked at once (bytes)


class Pattern:
    """A shared read-only pattern for all connections of a process."""

    def __init__(self, size: int, span: int = SPAN, seed: int = 0x5EED) -> None:
        self.period = PRIMES[0] if size % PRIMES[0] else PRIMES[1]
        self.span = span
        base = random.Random(seed).randbytes(self.period)
        reps = span // self.period + 2
        self.data: bytes = (base * reps)[: self.period + span]
        self.view = memoryview(self.data)

    def seed_for(self, conn_index: int) -> int:
        """A distinct starting offset per connection (7919 is prime, so distinct for
        ``conn_index < period``), so bytes echoed on the wrong connection are caught."""
        return (conn_index * 7919) % self.period

    def offset(self, seed: int, position: int) -> int:
        return (seed + position) % self.period

    def matches(self, chunk: memoryview, seed: int, position: int) -> bool:
        """True when ``chunk`` equals the stream bytes at ``position`` (len(chunk) <= span)."""
        return self.data.startswith(chunk, (seed + position) % self.period)

    def bad_messages(self, chunk: memoryview, seed: int, position: int, size: int) -> list[int]:
        """The numbers of the messages that have a wrong byte in ``chunk`` (the slow path that
        only runs after :meth:`matches` failed). A message split over several chunks can be
        reported once per chunk; the caller counts each number once."""
        bad = []
        start = position
        end = position + len(chunk)
        number = start // size
        while number * size < end:
            lo = max(number * size, start)
            hi = min((number + 1) * size, end)
            if not self.matches(chunk[lo - start : hi - start], seed, lo):
                bad.append(number)
            number += 1
        return bad
