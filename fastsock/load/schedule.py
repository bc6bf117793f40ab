"""When a load run does what: its phases, and in open loop the due time of every message.

Every engine (stream, HTTP, datagram, native) runs the same timeline on the shared
CLOCK_MONOTONIC, so forked workers line up: start at ``t0``, warm-up until ``warm_end``
(everything measured so far is thrown away), then the measured window until ``end``.

Open loop: message ``k`` of this process is due at ``t0 + k / rate`` on connection
``k mod conns`` (a fixed schedule, evenly spread); its latency counts from that due time, not
from when the client got round to sending it, so a stalled server shows its stall in full
(coordinated-omission correction, as wrk2 does). :class:`DueTimes` is that schedule; a closed
loop has none (each completion sends the next message at once, inside the engine's hot loop).
"""

from __future__ import annotations


def phases(t0: int, warmup: float, duration: float) -> tuple[int, int]:
    """``(warm_end, end)`` in ns: where the warm-up ends and where the measured window ends."""
    warm_end = t0 + int(warmup * 1e9)
    return warm_end, warm_end + int(duration * 1e9)


class DueTimes:
    """The open-loop schedule: ``next`` is the due time of message number ``count``, which goes
    out on connection ``count % conns``; :meth:`advance` takes it. The due time is computed
    from ``t0`` each time (not accumulated), so rounding never drifts the schedule."""

    __slots__ = ("count", "interval", "next", "t0")

    def __init__(self, t0: int, rate: float) -> None:
        self.t0 = t0
        self.interval = 1e9 / rate
        self.count = 0  # messages taken so far
        self.next = t0  # due time of message ``count``

    def advance(self) -> int:
        """Take the next message: returns its due time and moves on to the one after."""
        due = self.next
        self.count += 1
        self.next = self.t0 + int(self.count * self.interval)
        return due
