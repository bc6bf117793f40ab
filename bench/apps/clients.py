"""The real servers' own load tools, run as a subprocess with their CPU time measured (wait4),
so a run whose client used a whole core can be flagged client-bound."""

from __future__ import annotations

import time
from collections.abc import Sequence

from bench.apps.parsers import ParseError, parse_pgbench, parse_redis_csv
from bench.http.clients import run_measured

CLIENT_BOUND = 0.9  # client CPU seconds per wall second (summed over its threads)


def redis_target(unix_path: str | None, host: str = "127.0.0.1", port: int = 0) -> list[str]:
    """redis-benchmark's endpoint options: ``-s SOCK`` or ``-h HOST -p PORT``."""
    return ["-s", unix_path] if unix_path else ["-h", host, "-p", str(port)]


def run_redis_benchmark(
    binary: str,
    target: Sequence[str],
    *,
    tests: Sequence[str],
    size: int,
    clients: int,
    pipeline: int,
    requests: int,
    prefix: Sequence[str] = (),
) -> dict:
    """One redis-benchmark run (every test in ``tests`` one after another): per test its
    requests/s and latency percentiles, plus the client's CPU time and wall time.

    ``-r`` spreads the keys over 100k names (one hot key would measure a special case).
    """
    argv = [
        *prefix,
        binary,
        *target,
        "-t",
        ",".join(t.lower() for t in tests),
        "-d",
        str(size),
        "-c",
        str(clients),
        "-P",
        str(pipeline),
        "-n",
        str(requests),
        "-r",
        "100000",
        "--csv",
    ]
    start = time.monotonic()
    status, out, err, cpu = run_measured(argv, 600, None)
    wall = time.monotonic() - start
    if status != 0:
        raise ParseError(f"redis-benchmark exited with {status}: {err.strip()[-200:]}")
    return {"tests": parse_redis_csv(out), "client_cpu_s": cpu, "wall_s": wall}


def run_pgbench(
    argv_head: Sequence[str],
    *,
    script: str,
    clients: int,
    threads: int,
    seconds: int = 0,
    transactions: int = 0,
) -> dict:
    """One pgbench run: ``script`` is ``select-only`` (``-S``) or ``tpcb-like`` (the default
    script); ``-T seconds`` or, for a fraction of a second, ``-t transactions`` per client.
    ``-n``: no vacuum before the run (the tables were just made)."""
    mode = ["-S"] if script == "select-only" else ["-b", "tpcb-like"]
    amount = ["-T", str(seconds)] if seconds else ["-t", str(transactions)]
    argv = [*argv_head, *mode, "-n", "-c", str(clients), "-j", str(threads), *amount, "postgres"]
    start = time.monotonic()
    status, out, err, cpu = run_measured(argv, 600, None)
    wall = time.monotonic() - start
    if status != 0:
        raise ParseError(f"pgbench exited with {status}: {err.strip()[-200:]}")
    return {**parse_pgbench(out), "client_cpu_s": cpu, "wall_s": wall}
