"""What a load run checks and how it counts what it found wrong.

Every answer is checked while measuring (benchmarking.md, rule 5), each workload in its engine:
echo against the pattern that was sent (:mod:`fastsock.load.pattern`), a source stream against
byte k = k % 256, HTTP bodies by CRC-32, datagrams whole. What fails is counted by kind in an
:class:`ErrorLog`, the same kinds in every engine (the native one included), with the first few
as one-line samples.
"""

from __future__ import annotations

ERROR_KINDS = ("mismatch", "short_read", "reset", "refused", "closed", "other")
MAX_ERROR_SAMPLES = 10


class ErrorLog:
    """Errors by kind (``counts``, every kind present) and the first ``MAX_ERROR_SAMPLES`` as
    one-line ``samples``: the worker result's ``errors`` and ``error_samples``."""

    __slots__ = ("counts", "samples")

    def __init__(self) -> None:
        self.counts = dict.fromkeys(ERROR_KINDS, 0)
        self.samples: list[str] = []

    def add(self, kind: str, sample: str, count: int = 1) -> bool:
        """Count ``count`` errors of ``kind``; keep ``sample`` while there is room. Returns
        whether it was kept (so a caller logs only what it keeps)."""
        self.counts[kind] += count
        if len(self.samples) < MAX_ERROR_SAMPLES:
            self.samples.append(sample)
            return True
        return False

    def clear(self) -> None:
        """Forget everything (in place: ``counts`` and ``samples`` may be held elsewhere)."""
        for kind in self.counts:
            self.counts[kind] = 0
        self.samples.clear()
