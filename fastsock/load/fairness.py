"""How evenly a load run's messages were spread over its connections.

One function for every engine (Python, native, datagram): an engine reports how many messages
each connection completed inside the measured window, and :func:`per_connection` turns the
counts into the ``per_connection`` object of the ``fastsock.load/1`` JSON. A server that
starves some connections shows up here even when its totals and percentiles look healthy.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def jain_index(counts: Sequence[int]) -> float | None:
    """Jain's fairness index (Σx)² / (n·Σx²): 1.0 when every connection got the same share,
    1/n when one got everything. None when nothing was counted (0/0: no share to compare).
    Connections with zero messages count: a starved connection is the point."""
    if not counts:
        return None
    total = sum(counts)
    squares = sum(x * x for x in counts)
    if squares == 0:
        return None
    return total * total / (len(counts) * squares)


def per_connection(counts: Sequence[int]) -> dict | None:
    """``{"conns", "min", "p50", "max", "jain"}`` of messages per connection; None without
    connections. ``p50`` is the median (the mean of the middle two for an even count)."""
    if not counts:
        return None
    return {
        "conns": len(counts),
        "min": min(counts),
        "p50": float(statistics.median(counts)),
        "max": max(counts),
        "jain": jain_index(counts),
    }
