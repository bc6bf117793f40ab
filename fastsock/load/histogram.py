"""Latency recording into HDR histograms (nanoseconds), cheap on the hot path.

``HdrHistogram.record_value`` costs ~2.7 µs in pure Python here — more than the whole per-message
budget at 200k msgs/s. So the hot path only appends the latency to an ``array('q')`` (~0.1 µs), and
:meth:`LatencyRecorder.fold` turns a batch into bucket counts with numpy, using the same bucket
layout as ``HdrHistogram(1 ns, 1 h, 3 significant figures)``: a value of bit length L > 11 shares
a bucket with the values that agree in its top 11 bits. The counts go into a real
``HdrHistogram`` only when the run is over (one ``record_value(value, count)`` per bucket used),
so the result is the same as recording every value one by one; the tests check that.
"""

from __future__ import annotations

import array
from collections.abc import Iterable

import numpy as np
from hdrh.histogram import HdrHistogram

LOWEST_NS = 1
HIGHEST_NS = 3600 * 1_000_000_000  # one hour: longer latencies are clamped to it
SIGNIFICANT_FIGURES = 3
FOLD_AT = 1 << 16  # values buffered before folding into counts (512 KiB)

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9, "p9999": 99.99}


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_NS, HIGHEST_NS, SIGNIFICANT_FIGURES)


class LatencyRecorder:
    """Latencies in ns: ``values.append`` is the hot-path call, ``fold`` the batch one (call it
    every ``FOLD_AT`` values or so), ``histogram()`` the result."""

    def __init__(self) -> None:
        self._layout = new_histogram()
        # HDR layout: bucket b >= 0 holds sub-bucket indexes (v >> b) in [half, 2*half)
        # (bucket 0 also [0, half)), at counts index ((b + 1) << half_magnitude) + (v >> b) - half.
        assert self._layout.unit_magnitude == 0
        self._half_magnitude = self._layout.sub_bucket_half_count_magnitude
        self._half = self._layout.sub_bucket_half_count
        self._counts = np.zeros(self._layout.counts_len, dtype=np.int64)
        self.values = array.array("q")

    def fold(self) -> None:
        """Move buffered values into the bucket counts."""
        if not self.values:
            return
        raw = np.frombuffer(self.values, dtype=np.int64)
        values = np.clip(raw, LOWEST_NS, HIGHEST_NS)
        # frexp's exponent is the bit length for integers below 2**53 (HIGHEST_NS < 2**42).
        bit_length = np.frexp(values.astype(np.float64))[1].astype(np.int64)
        bucket = np.maximum(bit_length - (self._half_magnitude + 1), 0)
        index = ((bucket + 1) << self._half_magnitude) + (values >> bucket) - self._half
        self._counts += np.bincount(index, minlength=len(self._counts))
        del raw, values  # release the buffer export before resizing the array
        del self.values[:]

    @property
    def counts(self) -> np.ndarray:
        """The bucket counts in HdrHistogram's counts layout (int64, writable): the native
        engine counts into it directly."""
        return self._counts

    @property
    def half_magnitude(self) -> int:
        """``sub_bucket_half_count_magnitude`` of the layout (the native engine's index
        arithmetic needs it)."""
        return self._half_magnitude

    def reset(self) -> None:
        """Forget everything (end of warm-up)."""
        del self.values[:]
        self._counts[:] = 0

    def count(self) -> int:
        return int(self._counts.sum()) + len(self.values)

    def histogram(self) -> HdrHistogram:
        """An ``HdrHistogram`` with everything recorded so far."""
        self.fold()
        hist = new_histogram()
        for index in np.flatnonzero(self._counts).tolist():
            hist.record_value(hist.get_value_from_index(index), int(self._counts[index]))
        return hist

    def encoded(self) -> str:
        """The histogram in HdrHistogram's compressed base64 form (``histogram`` in the JSON)."""
        return encode(self.histogram())


def encode(hist: HdrHistogram) -> str:
    return hist.encode().decode("ascii")


def merge(encoded: Iterable[str]) -> HdrHistogram:
    """One histogram holding the counts of all the encoded ones (worker processes)."""
    total = new_histogram()
    for blob in encoded:
        total.decode_and_add(blob)
    return total


def summary_us(hist: HdrHistogram) -> dict:
    """The ``latency_us`` object: min, percentiles, max, mean, stdev in µs, count."""
    if hist.get_total_count() == 0:
        return {"count": 0, **dict.fromkeys(["min", *PERCENTILES, "max", "mean", "stdev"])}
    values = hist.get_percentile_to_value_dict(list(PERCENTILES.values()))
    out = {"min": hist.get_min_value() / 1000.0}
    for name, pct in PERCENTILES.items():
        out[name] = values[pct] / 1000.0
    out["max"] = hist.get_max_value() / 1000.0
    mean, stdev = mean_stdev_ns(hist)
    out["mean"] = mean / 1000.0
    out["stdev"] = stdev / 1000.0
    out["count"] = hist.get_total_count()
    return out


def mean_stdev_ns(hist: HdrHistogram) -> tuple[float, float]:
    """Mean and standard deviation as ``get_mean_value``/``get_stddev`` define them (each bucket
    at the median of its value range), over the used buckets only. hdrh walks every bucket in
    pure Python, which took ~0.5 s per result -- a third of a short benchmark run."""
    counts = np.ctypeslib.as_array(hist.counts)[: hist.counts_len]
    used = np.flatnonzero(counts)
    if not len(used):
        return 0.0, 0.0
    weights = counts[used].astype(np.float64)
    lows = [hist.get_value_from_index(i) for i in used.tolist()]
    mids = np.array(
        [lo + (hist.get_highest_equivalent_value(lo) - lo + 1) // 2 for lo in lows],
        dtype=np.float64,
    )
    mean = float(np.average(mids, weights=weights))
    stdev = float(np.sqrt(np.average((mids - mean) ** 2, weights=weights)))
    return mean, stdev


def spectrum_us(hist: HdrHistogram, ticks_per_half_distance: int = 5) -> list[list[float]]:
    """``[[percentile, value_us], ...]`` as HdrHistogram's percentile distribution prints it:
    points get denser towards 100%, so a chart with x = 1/(1-p) on a log axis is smooth."""
    if hist.get_total_count() == 0:
        return []
    points = []
    for item in hist.get_percentile_iterator(ticks_per_half_distance):
        points.append([item.percentile_level_iterated_to, item.value_iterated_to / 1000.0])
    # The iterator stops at the last recorded value below 100%; end on the max itself.
    if not points or points[-1][0] < 100.0:
        points.append([100.0, hist.get_max_value() / 1000.0])
    return points
