"""One closed- or open-loop measurement: ``fastsock load`` in a subprocess, its JSON read back.

The load generator runs as its own process (never in the harness's process or interpreter):
the harness must not compete with it for the GIL, and its CPU time must be its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from bench.matrix import placement as pl
from bench.matrix.plan import FLOOR_TRANSPORTS, SOCKET_TYPES, Variant
from fastsock.address import Endpoint
from fastsock.load.fairness import per_connection

# A run may take this much longer than warm-up + duration (interpreter start, connecting 256
# connections, writing JSON) before it is killed and recorded as failed.
GRACE_S = 30.0


def load_argv(endpoint: Endpoint, v: Variant, settings: dict, json_path: Path, pid: int) -> list:
    if endpoint.is_unix:
        where = ["--unix", endpoint.path]
    else:
        where = ["--host", endpoint.host, "--port", str(endpoint.port)]
    argv = [sys.executable, "-m", "fastsock", "load", *where]
    argv += ["--size", str(v.size), "--conns", str(v.conns), "--depth", str(v.depth)]
    argv += ["--duration", str(settings["duration"]), "--warmup", str(settings["warmup"])]
    argv += ["--workload", "echo", "--server-pid", str(pid), "--json", str(json_path), "--quiet"]
    if v.rate is not None:
        argv += ["--rate", f"{v.rate:g}"]
    if SOCKET_TYPES.get(v.transport, "stream") != "stream":
        argv += ["--type", SOCKET_TYPES[v.transport]]
    return argv


def floor_argv(v: Variant, settings: dict, json_path: Path) -> list:
    """The floor (no server): ``python -m fastsock.floor``, whose JSON is shaped like a load's."""
    argv = [sys.executable, "-m", "fastsock.floor", "--kind", v.transport]
    argv += ["--size", str(v.size), "--depth", str(v.depth)]
    argv += ["--duration", str(settings["duration"]), "--warmup", str(settings["warmup"])]
    return argv + ["--json", str(json_path), "--quiet"]


def _error_summary(load: dict) -> str:
    errors = load.get("errors") or {}
    parts = [f"{k} {n}" for k, n in errors.items() if k != "total" and n]
    return f"{errors.get('total', '?')} errors during the run ({', '.join(parts) or 'unknown'})"


def measure(
    endpoint: Endpoint | None,
    v: Variant,
    settings: dict,
    server_pid: int,
    spec: dict,
    json_path: Path,
    client: str = "fastsock",
) -> dict:
    """Run one load measurement; returns the run fields ``status``, ``error``, ``load``,
    ``wall_s``. A failed run is data too (it is reported), so this never raises for it.
    A floor transport (pipe, socketpair) has no server: ``endpoint`` and ``server_pid`` are
    unused and ``fastsock.floor`` runs instead of ``fastsock load``."""
    if v.transport in FLOOR_TRANSPORTS:
        argv = floor_argv(v, settings, json_path)
    elif client == "c":
        assert endpoint is not None
        return measure_c(endpoint, v, settings, server_pid, spec)
    else:
        assert endpoint is not None
        argv = load_argv(endpoint, v, settings, json_path, server_pid)
    tool = "fastsock.floor" if v.transport in FLOOR_TRANSPORTS else "fastsock load"
    timeout = settings["warmup"] + settings["duration"] + GRACE_S
    json_path.unlink(missing_ok=True)
    start = time.monotonic()
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
            preexec_fn=pl.client_preexec(spec),
        )
    except subprocess.TimeoutExpired:
        # subprocess.run killed the child (by its PID) before raising.
        return _result("failed", f"{tool} did not finish within {timeout:.0f} s", None, start)
    load = None
    try:
        load = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        pass
    if proc.returncode == 0 and load is not None:
        return _result("ok", None, load, start)
    if proc.returncode == 1 and load is not None:
        return _result("failed", _error_summary(load), load, start)
    last = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
    return _result("failed", f"{tool}: {last[0][:300]}", load, start)


def _result(status: str, error: str | None, load: dict | None, start: float) -> dict:
    return {
        "status": status,
        "error": error,
        "load": load,
        "wall_s": round(time.monotonic() - start, 3),
    }


def c_load_argv(endpoint: Endpoint, v: Variant, settings: dict) -> list:
    from bench.peers.registry import LOAD_CLIENT

    where = ["--unix", endpoint.path] if endpoint.is_unix else ["--port", str(endpoint.port)]
    if not endpoint.is_unix:
        where = ["--host", endpoint.host, *where]
    return [
        str(LOAD_CLIENT),
        *where,
        *("--size", str(v.size), "--conns", str(v.conns), "--depth", str(v.depth)),
        *("--duration", str(settings["duration"]), "--warmup", str(settings["warmup"])),
    ]


def measure_c(endpoint: Endpoint, v: Variant, settings: dict, server_pid: int, spec: dict) -> dict:
    """The same measurement with the C reference load client (bench/peers/c/load_client.c).

    It verifies every echoed byte but records no latency, and costs far less CPU per message
    than any server here, so the server sets the pace: the client to compare servers with on a
    2-core machine, where a Python client would measure itself. Its output is turned into a
    ``fastsock.load/1``-shaped result with ``latency_us: null``. The server's CPU time is taken
    over the whole client run (warm-up included): the C client reports only its own window.
    """
    import psutil

    from bench.peers.registry import LOAD_CLIENT, build_c_peers

    start = time.monotonic()
    if not LOAD_CLIENT.exists() and build_c_peers().get("load_client") is not None:
        return _result("failed", "the C load client could not be built (no cc?)", None, start)
    argv = c_load_argv(endpoint, v, settings)
    timeout = settings["warmup"] + settings["duration"] + GRACE_S
    try:
        server = psutil.Process(server_pid)
        before = server.cpu_times()
    except psutil.Error:
        server, before = None, None
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=pl.client_preexec(spec),
        )
    except subprocess.TimeoutExpired:
        return _result("failed", f"load_client did not finish within {timeout:.0f} s", None, start)
    wall = time.monotonic() - start
    server_cpu = None
    if server is not None and before is not None:
        try:
            after = server.cpu_times()
            server_cpu = (after.user - before.user, after.system - before.system)
        except psutil.Error:
            pass
    try:
        raw = json.loads(proc.stdout)
    except json.JSONDecodeError:
        last = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        return _result("failed", f"load_client: {last[0][:300]}", None, start)
    load = c_result_as_load(raw, endpoint, v, settings, server_cpu, wall)
    if proc.returncode != 0:
        return _result("failed", f"load_client: {raw.get('errors', '?')} errors", load, start)
    return _result("ok", None, load, start)


def c_result_as_load(
    raw: dict,
    endpoint: Endpoint,
    v: Variant,
    settings: dict,
    server_cpu: tuple[float, float] | None,
    wall_s: float,
) -> dict:
    """The C client's JSON in the shape of ``fastsock load --json`` (latency: null)."""
    window = raw.get("elapsed_s") or settings["duration"]
    client_util = (raw["cpu_user_s"] + raw["cpu_sys_s"]) / window if window else 0.0
    errors = int(raw.get("errors", 0))
    return {
        "schema": "fastsock.load/1",
        "client": "c-load",
        "params": {
            "endpoint": str(endpoint),
            "transport": endpoint.transport,
            "workload": "echo",
            "size": v.size,
            "conns": v.conns,
            "depth": v.depth,
            "duration": settings["duration"],
            "warmup": settings["warmup"],
            "rate": None,
            "loop": "closed",
            "procs": 1,
        },
        "messages": raw["messages"],
        "bytes": raw["messages"] * v.size,
        "elapsed_s": window,
        "msgs_per_s": raw["msgs_per_s"],
        "mb_per_s": raw["mb_per_s"],
        "errors": {"total": errors},
        # Messages per connection in the window (fastsock load's per_connection, Jain's index).
        "per_connection": per_connection(raw["conn_messages"]) if "conn_messages" in raw else None,
        "latency_us": None,
        "latency_spectrum": None,
        "histogram": None,
        "cpu": {
            "client_user_s": raw["cpu_user_s"],
            "client_sys_s": raw["cpu_sys_s"],
            "client_cpu_util": client_util,
            "client_cores": 1,
            "client_bound": client_util >= 0.9,
            "server_user_s": server_cpu[0] if server_cpu else None,
            "server_sys_s": server_cpu[1] if server_cpu else None,
            "server_cpu_util": sum(server_cpu) / wall_s if server_cpu and wall_s else None,
        },
    }
