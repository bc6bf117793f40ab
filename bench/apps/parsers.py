"""Parsers for the real servers' own benchmark tools, pure functions over their text output."""

from __future__ import annotations

import csv
import io
import re

# redis-benchmark --csv (Redis 7): one header line, then one row per test, latencies in ms.
REDIS_FIELDS = {
    "rps": "req_per_s",
    "avg_latency_ms": "avg_ms",
    "min_latency_ms": "min_ms",
    "p50_latency_ms": "p50_ms",
    "p95_latency_ms": "p95_ms",
    "p99_latency_ms": "p99_ms",
    "max_latency_ms": "max_ms",
}


class ParseError(ValueError):
    """The tool's output was not what this parser knows (a changed format or a failed run)."""


def parse_redis_csv(text: str) -> dict[str, dict[str, float]]:
    """``{"GET": {"req_per_s": ..., "p50_ms": ..., ...}, "SET": {...}}`` from ``--csv`` output.

    Progress lines (``SET: rps=...``, written with carriage returns) are ignored: only rows
    after the CSV header count.
    """
    lines = [ln.strip() for ln in text.replace("\r", "\n").splitlines()]
    try:
        start = next(i for i, ln in enumerate(lines) if ln.startswith('"test"'))
    except StopIteration:
        raise ParseError(f"no CSV header in redis-benchmark output: {text[:200]!r}") from None
    reader = csv.DictReader(io.StringIO("\n".join(ln for ln in lines[start:] if ln)))
    missing = set(REDIS_FIELDS) - set(reader.fieldnames or ())
    if missing:
        raise ParseError(f"redis-benchmark CSV lacks {', '.join(sorted(missing))}")
    out: dict[str, dict[str, float]] = {}
    for row in reader:
        try:
            out[row["test"]] = {ours: float(row[theirs]) for theirs, ours in REDIS_FIELDS.items()}
        except (TypeError, ValueError) as err:
            raise ParseError(f"bad redis-benchmark row {row!r}: {err}") from None
    if not out:
        raise ParseError("redis-benchmark CSV has a header but no rows")
    return out


_PG_PATTERNS = {
    "tps": re.compile(r"^tps = ([\d.]+) \(without initial connection time\)", re.M),
    "latency_avg_ms": re.compile(r"^latency average = ([\d.]+) ms", re.M),
    "latency_stddev_ms": re.compile(r"^latency stddev = ([\d.]+) ms", re.M),
    "connect_ms": re.compile(r"^initial connection time = ([\d.]+) ms", re.M),
    "transactions": re.compile(r"^number of transactions actually processed: (\d+)", re.M),
    "failed": re.compile(r"^number of failed transactions: (\d+)", re.M),
    "clients": re.compile(r"^number of clients: (\d+)", re.M),
}
_PG_TYPE = re.compile(r"^transaction type: (.+)$", re.M)
_PG_REQUIRED = ("tps", "latency_avg_ms", "transactions")


def parse_pgbench(text: str) -> dict[str, float | str]:
    """tps, latency average (and stddev when printed), transactions and failures from the
    summary pgbench prints at the end of a run (PostgreSQL 15's format)."""
    out: dict[str, float | str] = {}
    for key, pattern in _PG_PATTERNS.items():
        match = pattern.search(text)
        if match:
            out[key] = float(match.group(1))
    missing = [key for key in _PG_REQUIRED if key not in out]
    if missing:
        raise ParseError(f"no {', '.join(missing)} in pgbench output: {text[-300:]!r}")
    kind = _PG_TYPE.search(text)
    out["transaction_type"] = kind.group(1).strip() if kind else "?"
    out.setdefault("failed", 0.0)
    return out
