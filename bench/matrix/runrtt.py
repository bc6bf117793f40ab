"""One interleaving round of ping-pong RTT: run ``bench/matrix/rtt.py`` under pyperf, read it back.

Each round writes a fresh pyperf file (so this round's values are known exactly), then merges
it into the experiment's per-transport file with ``pyperf.add_runs``. After all rounds that file
holds every worker run of every round, and ``python -m pyperf stats`` / ``compare_to`` read it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pyperf

from bench.matrix import placement as pl
from fastsock.address import Endpoint

RTT_SCRIPT = Path(__file__).resolve().parent / "rtt.py"
# Seconds allowed per pyperf worker before the round is killed: interpreter start and connect
# (~0.3 s) plus the round trips themselves (1 MiB round trips take a few ms each).
WORKER_BUDGET_S = 20.0


def benchmark_name(server: str, size: int, placement: str) -> str:
    """Must match ``bench/matrix/rtt.py``'s names (that script cannot import this package)."""
    return f"{server}-{size}B-{placement}"


def measure_round(
    endpoint: Endpoint,
    server: str,
    sizes: list[int],
    placement: str,
    spec: dict,
    settings: dict,
    round_file: Path,
    merged_file: Path,
) -> tuple[dict[int, list[float]], str | None, float]:
    """Run one round for every size. Returns (size -> round trips in µs, error, wall seconds);
    sizes missing from the dict failed, and ``error`` says why."""
    round_file.unlink(missing_ok=True)
    argv = [sys.executable, str(RTT_SCRIPT), "--endpoint", str(endpoint)]
    argv += ["--sizes", ",".join(str(s) for s in sizes), "--server", server]
    argv += ["--placement", placement, "--loops", "1", "--quiet", "-o", str(round_file)]
    argv += ["--values", str(settings["rtt_values"]), "--warmups", str(settings["rtt_warmups"])]
    argv += ["--processes", str(settings["rtt_processes"])]
    cpus = pl.client_cpus(spec)
    if cpus is not None:
        argv += ["--affinity", pl.cpu_list(cpus)]
    timeout = 10.0 + WORKER_BUDGET_S * len(sizes) * settings["rtt_processes"]
    start = time.monotonic()
    try:
        proc = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {}, f"pyperf round did not finish within {timeout:.0f} s", time.monotonic() - start
    wall = time.monotonic() - start
    if proc.returncode != 0 or not round_file.exists():
        text = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        last = [line for line in text if line.strip()][-1:] or [f"exit {proc.returncode}"]
        return {}, f"pyperf rtt.py failed: {last[0][:300]}", wall
    suite = pyperf.BenchmarkSuite.load(str(round_file))
    pyperf.add_runs(str(merged_file), suite)
    values = {}
    for size in sizes:
        try:
            bench = suite.get_benchmark(benchmark_name(server, size, placement))
        except KeyError:
            continue
        values[size] = [round(v * 1e6, 3) for v in bench.get_values()]
    missing = [s for s in sizes if s not in values]
    error = f"no pyperf values for sizes {missing}" if missing else None
    return values, error, wall
