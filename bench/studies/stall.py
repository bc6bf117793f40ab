"""The open-loop tail with the server stopped for a second, per engine (for ``agree_load``).

Issue 11: the two engines must agree on the open-loop tail when the server is stopped for 1 s.
Open loop measures each message from its due time, so every message due during the stop waits
for its end: at a fixed rate, with the stop inside the window, the tail (p90, p99) is set by the
stop and by each engine's coordinated-omission correction, not by either client's speed. The
clients run in this process (``run_load``), so the SIGSTOP can be timed from the start of the
run: connecting takes milliseconds, the stop begins ``PAUSE_AT`` seconds after the warm-up.
``tests/load/test_coordinated_omission.py`` checks each engine on its own against a 0.5 s stop.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time

from bench.peers.registry import peer_env
from bench.peers.warm import warm_up
from bench.studies.calibrate_load import server_argv
from bench.studies.common import study_endpoint
from fastsock.address import Endpoint
from fastsock.load import LoadConfig, run_load
from fastsock.pressure import cpu_pressure_us, pressure_share
from fastsock.process import ServerProcess, stop_for_a_while

PAUSE = 1.0
PAUSE_AT = 0.5  # seconds into the measured window


def stall_run(
    name: str, endpoint: Endpoint, server: ServerProcess, args: argparse.Namespace
) -> dict:
    """One open-loop run of client ``name`` (``native-p1``...) with the server stopped once."""
    engine, procs = name.split("-p")
    stopped = threading.Event()
    config = LoadConfig(
        endpoint=endpoint,
        size=args.size,
        conns=args.conns,
        duration=args.duration,
        warmup=args.warmup,
        rate=args.rate,
        procs=int(procs),
        engine=engine,
        server_pid=server.pid,
    )
    thread = stop_for_a_while(server.pid, args.warmup + PAUSE_AT, PAUSE, stopped)
    psi0, t0 = cpu_pressure_us(), time.monotonic()
    try:
        out = run_load(config)
        pressure = pressure_share(psi0, cpu_pressure_us(), time.monotonic() - t0)
    finally:
        thread.join(timeout=PAUSE + 10)
        os.kill(server.pid, signal.SIGCONT)
    if not stopped.is_set():
        raise RuntimeError(f"{name}: the run ended before the server was stopped")
    if out["errors"]["total"]:
        raise RuntimeError(f"{name} counted {out['errors']['total']} errors")
    lat, cpu = out["latency_us"], out["cpu"]
    return {
        "client": name,
        "msgs_per_s": out["msgs_per_s"],
        "p50_us": lat["p50"],
        "p90_us": lat["p90"],
        "p99_us": lat["p99"],
        "max_us": lat["max"],
        "client_cpu_util": round(cpu["client_cpu_util"], 3),
        "client_cores": cpu["client_cores"],
        "server_cpu_util_window": None
        if cpu["server_cpu_util"] is None
        else round(cpu["server_cpu_util"], 3),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "cpu_pressure": pressure,
    }


def stall_point(transport: str, args: argparse.Namespace, tmp: str) -> dict:
    """Every client once per repeat (order reversed each repeat) against one warmed server."""
    if args.duration < PAUSE_AT + PAUSE + 0.2:
        raise ValueError(f"a stall point needs --duration >= {PAUSE_AT + PAUSE + 0.2:g} s")
    endpoint = study_endpoint(transport, tmp, "stall.sock")
    runs: list[dict] = []
    with ServerProcess(server_argv(args, endpoint), env=peer_env()) as server:
        warm_up(server.endpoint)
        for repeat in range(args.repeats):
            order = args.clients if repeat % 2 == 0 else list(reversed(args.clients))
            for name in order:
                run = stall_run(name, server.endpoint, server, args)
                run["repeat"] = repeat
                runs.append(run)
                print(
                    f"  {transport:4} s{args.rate:g} #{repeat} {name:10} p90 "
                    f"{run['p90_us'] / 1e3:,.0f} ms  p99 {run['p99_us'] / 1e3:,.0f} ms  "
                    f"max {run['max_us'] / 1e3:,.0f} ms  client {run['client_cpu_util']:.2f} cores",
                    flush=True,
                )
    return {
        "transport": transport,
        "depth": 1,
        "rate": args.rate,
        "stall_s": PAUSE,
        "stall_at_s": PAUSE_AT,
        "runs": runs,
        "summary": {name: {} for name in args.clients},
    }
