"""Numbers from a results file: medians with spread, UNIX/TCP ratios, client-bound flags.

Both the charts and REPORT.md use these functions, so a figure in the text is the figure in
the chart. Conventions: a *spread* is the median and the min-max over interleaved rounds (a
description); a *ratio* pairs the two sides' runs of the same round (they ran back to back),
so machine drift cancels out of each ratio, and is given as the geometric mean of the paired
ratios with its 95% confidence interval (fastsock.findings).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

TRANSPORT_LABELS = {
    "unix": "UNIX",
    "tcp": "TCP 127.0.0.1",
    "tcp6": "TCP6 ::1",
    "pipe": "pipe pair",
    "socketpair": "socketpair",
    "socketpair-seqpacket": "socketpair seqpacket",
    "unix-seqpacket": "UNIX seqpacket",
    "unix-dgram": "UNIX datagram",
    "udp": "UDP 127.0.0.1",
}
# The stream transports first (the UNIX vs TCP question), then the transports experiment's
# others from the cheapest channel up.
TRANSPORT_ORDER = [
    "unix",
    "tcp",
    "tcp6",
    "pipe",
    "socketpair",
    "socketpair-seqpacket",
    "unix-seqpacket",
    "unix-dgram",
    "udp",
]
STREAM_TRANSPORTS = ("unix", "tcp", "tcp6")

# Metrics by name -> (label with unit, where to find it).
METRIC_LABELS = {
    "msgs_per_s": "messages/s",
    "mb_per_s": "MB/s (payload one way, MB = 10^6 B)",
    "p50_us": "p50 latency (µs)",
    "p90_us": "p90 latency (µs)",
    "p99_us": "p99 latency (µs)",
    "p999_us": "p99.9 latency (µs)",
    "max_us": "max latency (µs)",
    "mean_rtt_us": "mean round trip (µs; 1 connection, 1 in flight)",
}
_LOAD_PERCENTILES = {"p50_us": "p50", "p90_us": "p90", "p99_us": "p99", "p999_us": "p999"}
_RTT_PERCENTILES = {"p50_us": 50.0, "p90_us": 90.0, "p99_us": 99.0, "p999_us": 99.9}

# A run counts as client-bound when the load generator used this share of its cores or more
# (used only when the load JSON does not say it itself).
CLIENT_BOUND_UTIL = 0.9
# Open loop: a step is saturated when it delivered less than this share of the offered rate.
SATURATION_SHARE = 0.95
# Open loop: a step is past the knee when its p99 is this many times the lightest step's p99.
KNEE_FACTOR = 10.0


@dataclass(frozen=True)
class Spread:
    """Median and min-max of a few repeated measurements."""

    median: float
    lo: float
    hi: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Spread | None:
        vals = [v for v in values if v is not None]
        if not vals:
            return None
        return cls(statistics.median(vals), min(vals), max(vals), len(vals))

    @property
    def rel_range(self) -> float:
        """(max - min) / median: how far apart the repeats were."""
        return (self.hi - self.lo) / self.median if self.median else float("inf")


def spread_record(values: list[float]) -> dict:
    """Median, min, max and count of ``values``: how the bench's own JSON files (http, apps,
    calibration) store a spread, and what :func:`record_ratio_text` reads back."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def ratio_text(r: Spread) -> str:
    """A ratio with its interval as text: 2.25× (2.19–2.43×)."""
    if r.hi == float("inf"):
        return f"{r.median:.2f}× (no CI: {r.n} pairs)"
    return f"{r.median:.2f}× ({r.lo:.2f}–{r.hi:.2f}×)"


def record_ratio_text(record: dict) -> str:
    """A stored ratio spread as text: 2.25× (2.19–2.43×)."""
    return f"{record['median']:.2f}× ({record['min']:.2f}–{record['max']:.2f}×)"


def label(transport: str) -> str:
    return TRANSPORT_LABELS.get(transport, transport)


# fastsock's engines, by peer name: the same server and handlers over two event loops.
ENGINES = {"fastsock": "epoll", "fastsock-uring": "io_uring"}


def server_label(server: str) -> str:
    """'fastsock (io_uring)' for an engine of fastsock, else the peer name as it is."""
    return f"fastsock ({ENGINES[server]})" if server in ENGINES else server


def fmt_size(size: int) -> str:
    """64 B, 4 KiB, 1 MiB."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"


def fmt_num(value: float) -> str:
    """A rate or latency with 3 significant figures and k/M suffixes: 221k, 1.52M, 38.4."""
    for suffix, scale in (("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def ok_runs(exp: dict) -> list[dict]:
    """The runs that count: successful, not run again because of outside load, and not
    disturbed by it (a disturbed run kept after the rerun budget ran out measured the machine's
    other work as much as the question, so it is left out of every figure and counted)."""
    return [
        r
        for r in exp["runs"]
        if r["status"] == "ok"
        and not r.get("superseded")
        and not (r.get("interference") or {}).get("disturbed")
    ]


def failed_runs(exp: dict) -> list[dict]:
    return [r for r in exp["runs"] + exp.get("calibration", []) if r["status"] != "ok"]


def select(runs: Iterable[dict], **where: object) -> list[dict]:
    """Runs whose variant matches every ``key=value`` given."""
    return [r for r in runs if all(r["variant"].get(k) == v for k, v in where.items())]


def values_of(exp: dict, key: str) -> list:
    """The distinct values a variant key takes in an experiment's runs, in sweep order."""
    seen = {r["variant"][key] for r in exp["runs"]}
    if key == "transport":
        return [t for t in TRANSPORT_ORDER if t in seen] + sorted(seen - set(TRANSPORT_ORDER))
    if key in ("server", "placement"):
        order = exp["params"].get(key + "s", [])
        return [v for v in order if v in seen] + sorted(seen - set(order))
    return sorted(seen, key=lambda v: (v is None, v))


def metric(run: dict, name: str) -> float | None:
    """One number of one run: a throughput or a latency percentile (µs)."""
    if "rtt_us" in run:
        values = run["rtt_us"]
        if not values:
            return None
        if name in _RTT_PERCENTILES:
            return float(np.percentile(values, _RTT_PERCENTILES[name]))
        if name == "max_us":
            return float(max(values))
        if name == "msgs_per_s":
            # One connection, one message in flight: the RTT is the whole story.
            return 1e6 / float(np.mean(values))
        return None
    load = run.get("load") or {}
    if name in ("msgs_per_s", "mb_per_s"):
        return load.get(name)
    if name == "mean_rtt_us":
        # One connection, one message in flight: every message is a round trip.
        rate = load.get("msgs_per_s")
        return 1e6 / rate if rate else None
    lat = load.get("latency_us") or {}
    if name == "max_us":
        return lat.get("max")
    if name in _LOAD_PERCENTILES:
        return lat.get(_LOAD_PERCENTILES[name])
    raise KeyError(f"unknown metric {name!r}")


def spread(runs: Iterable[dict], name: str) -> Spread | None:
    return Spread.of(metric(r, name) for r in runs)


def client_bound(run: dict) -> bool:
    """Did the load generator saturate its CPU (so it, not the server, set the pace)?"""
    cpu = (run.get("load") or {}).get("cpu") or {}
    if "client_bound" in cpu and cpu["client_bound"] is not None:
        return bool(cpu["client_bound"])
    util, cores = cpu.get("client_cpu_util"), cpu.get("client_cores") or 1
    return util is not None and util >= CLIENT_BOUND_UTIL * cores


def cpu_util(runs: Iterable[dict], who: str) -> Spread | None:
    """Median CPU use of ``who`` (client or server) in cores (1.0 = one core busy)."""
    return Spread.of(((r.get("load") or {}).get("cpu") or {}).get(f"{who}_cpu_util") for r in runs)


def paired_by_round(
    exp: dict, key: str, a: object, b: object, get: Callable[[dict], float | None], **where: object
) -> dict[tuple, tuple[list, list, list]]:
    """How every ratio in the report pairs its runs: per point (the variant less ``key``), the
    values ``get`` reads from the runs with ``key = a`` and ``key = b`` that ran in the same
    round (back to back): (a values, b values, rounds), one entry per round in which both ran,
    over the counted runs (:func:`ok_runs`) matching ``where``."""
    by_round: dict[tuple, dict[int, dict]] = {}
    for r in select(ok_runs(exp), **where):
        v = r["variant"]
        if v[key] not in (a, b):
            continue
        point = tuple(sorted((k, x) for k, x in v.items() if k != key))
        by_round.setdefault(point, {}).setdefault(r["repeat"], {})[v[key]] = get(r)
    out = {}
    for point, rounds in by_round.items():
        keep = sorted(k for k, pair in rounds.items() if a in pair and b in pair)
        out[point] = ([rounds[k][a] for k in keep], [rounds[k][b] for k in keep], keep)
    return out


def paired_ratios(
    exp: dict,
    name: str,
    num: str = "unix",
    den: str = "tcp",
    key: str = "transport",
    **where: object,
) -> Spread | None:
    """Ratio of a metric between two values of ``key`` (by default UNIX / TCP), paired by
    round (:func:`paired_by_round`), pooled over the points matching ``where``: a
    :class:`Spread` whose ``median`` is the estimate (the geometric mean of the paired ratios)
    and whose ``lo``-``hi`` is its 95% confidence interval (fastsock.findings), ``n`` the
    pairs. ``hi`` is ``inf`` with fewer than three pairs (no interval)."""
    from fastsock.findings import finding

    points = paired_by_round(exp, key, num, den, lambda r: metric(r, name), **where).values()
    pairs = [
        (x, y) for xs, ys, _ in points for x, y in zip(xs, ys, strict=True) if x is not None and y
    ]
    if not pairs:
        return None
    f = finding("", "", str(num), str(den), name, [x for x, _ in pairs], [y for _, y in pairs])
    if f["estimate"] is None:
        return None
    hi = f["ci_high"] if f["ci_high"] is not None else float("inf")
    return Spread(f["estimate"], f["ci_low"] or 0.0, hi, f["n"])


def saturated(run: dict) -> bool:
    """Open loop: did the system fall behind the offered rate?"""
    rate = run["variant"].get("rate")
    got = metric(run, "msgs_per_s")
    return bool(rate) and got is not None and got < SATURATION_SHARE * rate


def is_transports(exp: dict) -> bool:
    """An experiment over more than the stream transports (the `transports` experiment): it
    has its own chart and findings (fastsock/report/transports.py), not the UNIX-vs-TCP ones."""
    return bool(set(exp["params"].get("transports", [])) - set(STREAM_TRANSPORTS))


def find(doc: dict, kind: str, sweep: str) -> dict | None:
    """The first experiment of this kind and sweep over the stream transports that has
    successful runs."""
    for exp in doc["experiments"]:
        if exp["kind"] != kind or exp["sweep"] != sweep or is_transports(exp):
            continue
        if ok_runs(exp):
            return exp
    return None


def find_transports(doc: dict) -> dict | None:
    """The first transports experiment with successful runs."""
    for exp in doc["experiments"]:
        if is_transports(exp) and ok_runs(exp):
            return exp
    return None


def pooled_rtt(runs: Iterable[dict]) -> list[float]:
    """All round trips of several rtt runs together (for a percentile spectrum)."""
    return [v for r in runs for v in r.get("rtt_us", [])]


def median_run(runs: list[dict], name: str) -> dict | None:
    """The run whose metric is the median one (the lower middle for an even count)."""
    scored = [(metric(r, name), i) for i, r in enumerate(runs)]
    scored = sorted((v, i) for v, i in scored if v is not None)
    if not scored:
        return None
    return runs[scored[(len(scored) - 1) // 2][1]]
