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

from bench import placement as pl
from bench.matrix import Variant
from fastsock.address import Endpoint

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
    return argv


def _error_summary(load: dict) -> str:
    errors = load.get("errors") or {}
    parts = [f"{k} {n}" for k, n in errors.items() if k != "total" and n]
    return f"{errors.get('total', '?')} errors during the run ({', '.join(parts) or 'unknown'})"


def measure(
    endpoint: Endpoint,
    v: Variant,
    settings: dict,
    server_pid: int,
    spec: dict,
    json_path: Path,
) -> dict:
    """Run one load measurement; returns the run fields ``status``, ``error``, ``load``,
    ``wall_s``. A failed run is data too (it is reported), so this never raises for it."""
    argv = load_argv(endpoint, v, settings, json_path, server_pid)
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
        return _result(
            "failed", f"fastsock load did not finish within {timeout:.0f} s", None, start
        )
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
    return _result("failed", f"fastsock load: {last[0][:300]}", load, start)


def _result(status: str, error: str | None, load: dict | None, start: float) -> dict:
    return {
        "status": status,
        "error": error,
        "load": load,
        "wall_s": round(time.monotonic() - start, 3),
    }
