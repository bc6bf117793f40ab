"""Merge worker results into the ``fastsock.load/1`` JSON result, and print it for humans."""

from __future__ import annotations

import time
from typing import IO

from fastsock.load.config import LoadConfig, format_size
from fastsock.load.cpu import client_cores, is_client_bound
from fastsock.load.fairness import per_connection
from fastsock.load.histogram import encode, merge, spectrum_us, summary_us
from fastsock.load.verify import ERROR_KINDS
from fastsock.load.window import LATENCY_WORKLOADS

SCHEMA = "fastsock.load/1"


def build(config: LoadConfig, workers: list[dict], metadata: dict) -> dict:
    """The JSON result from the per-process results (``Engine.run``) of one run.

    Counts and histograms add; rates add (each process divides by its own window, which differ
    by microseconds); CPU seconds add; the server's CPU comes from the one process measuring it.
    """
    elapsed = max(w["elapsed_ns"] for w in workers) / 1e9
    messages = sum(w["messages"] for w in workers)
    nbytes = sum(w["bytes"] for w in workers)
    # 0.0, not 0, when no window ran (every connection failed in warm-up): readers want floats.
    msgs_per_s = sum(
        (w["messages"] / (w["elapsed_ns"] / 1e9) for w in workers if w["elapsed_ns"]), 0.0
    )
    bytes_per_s = sum(
        (w["bytes"] / (w["elapsed_ns"] / 1e9) for w in workers if w["elapsed_ns"]), 0.0
    )
    errors = {kind: sum(w["errors"][kind] for w in workers) for kind in ERROR_KINDS}
    errors = {"total": sum(errors.values()), **errors}

    latency = spectrum = histogram = None
    if config.workload in LATENCY_WORKLOADS:
        hist = merge(w["histogram"] for w in workers)
        latency = summary_us(hist)
        latency["incomplete"] = sum(w["incomplete"] for w in workers)
        spectrum = spectrum_us(hist)
        histogram = encode(hist)

    cpu_user = sum(w["cpu_user_s"] for w in workers)
    cpu_sys = sum(w["cpu_sys_s"] for w in workers)
    util = (cpu_user + cpu_sys) / elapsed if elapsed else 0.0
    cores = client_cores(config.procs)
    server = next((w for w in workers if w["server_user_s"] is not None), None)
    server_util = None
    if server is not None and server["elapsed_ns"]:
        server_util = (server["server_user_s"] + server["server_sys_s"]) / (
            server["elapsed_ns"] / 1e9
        )
    cpu = {
        "client_user_s": round(cpu_user, 3),
        "client_sys_s": round(cpu_sys, 3),
        "client_cpu_util": round(util, 3),
        "client_cores": cores,
        "client_bound": is_client_bound(util, cores),
        "server_user_s": round(server["server_user_s"], 3) if server else None,
        "server_sys_s": round(server["server_sys_s"], 3) if server else None,
        "server_cpu_util": round(server_util, 3) if server_util is not None else None,
    }
    samples = [s for w in workers for s in w["error_samples"]][:10]
    # Fairness over every connection of every process (a worker without counts: unknown).
    counts = [w.get("conn_messages") for w in workers]
    fairness = (
        per_connection([n for c in counts for n in c])
        if all(c is not None for c in counts)
        else None
    )
    extra = {}
    if "datagrams" in workers[0]:
        extra["datagrams"] = {
            k: sum(w["datagrams"][k] for w in workers) for k in workers[0]["datagrams"]
        }
    return {
        "schema": SCHEMA,
        "params": config.params(),
        "messages": messages,
        "bytes": nbytes,
        "elapsed_s": round(elapsed, 6),
        "msgs_per_s": round(msgs_per_s, 1),
        "mb_per_s": round(bytes_per_s / 1e6, 3),
        "errors": errors,
        "error_samples": samples,
        "conns_alive": sum(w["conns_alive"] for w in workers),
        "per_connection": fairness,
        "latency_us": latency,
        "latency_spectrum": spectrum,
        "histogram": histogram,
        "cpu": cpu,
        **extra,
        "metadata": metadata,
    }


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def summary(result: dict) -> str:
    """A few lines for humans."""
    p = result["params"]
    http = p["workload"] == "http"
    unit = "req/s" if http else "msgs/s"
    loop = f"open loop at {p['rate']:,.0f} {unit}" if p["loop"] == "open" else "closed loop"
    what = f"http GET {p['path']} ({format_size(p['size'])})" if http else p["workload"]
    if not http:
        what += f" {format_size(p['size'])}"
    lines = [
        f"fastsock load: {what} over {p['endpoint']}, "
        f"{p['conns']} conns x depth {p['depth']}, {loop}, {p['procs']} proc(s), "
        f"{p['duration']:g} s (+{p['warmup']:g} s warm-up)",
        f"  throughput  {result['msgs_per_s']:,.0f} {unit}   {result['mb_per_s']:,.2f} MB/s   "
        f"({result['messages']:,} {'responses' if http else 'messages'} in "
        f"{result['elapsed_s']:.2f} s)",
    ]
    dg = result.get("datagrams")
    if dg:
        lost = dg["lost"] / dg["sent"] if dg["sent"] else 0.0
        lines.append(
            f"  datagrams   sent {dg['sent']:,}, answered {dg['answered']:,}, lost {dg['lost']:,} "
            f"({lost:.2%}), late {dg['late']:,}, duplicated {dg['duplicated']:,}, reordered "
            f"{dg['reordered']:,}, corrupted {dg['corrupted']:,}"
        )
    lat = result["latency_us"]
    if lat and lat["count"]:
        parts = [f"{k} {_num(lat[k])}" for k in ("min", "p50", "p90", "p99", "p999", "p9999")]
        lines.append(f"  latency us  {'  '.join(parts)}  max {_num(lat['max'])}")
        if lat.get("incomplete"):
            note = f"({lat['incomplete']} unanswered at the end, counted by their age)"
            lines.append(" " * 14 + note)
    fair = result.get("per_connection")
    if fair:
        lines.append(fairness_line(fair, unit))
    cpu = result["cpu"]
    text = f"  cpu         client {cpu['client_cpu_util']:.2f} of {cpu['client_cores']} core(s)"
    if cpu["client_bound"]:
        text += " (CLIENT-BOUND: the client measured itself)"
    if cpu["server_cpu_util"] is not None:
        text += f", server {cpu['server_cpu_util']:.2f} core(s)"
    lines.append(text)
    errors = result["errors"]
    if errors["total"]:
        kinds = ", ".join(f"{k} {v}" for k, v in errors.items() if v and k != "total")
        lines.append(f"  ERRORS      {errors['total']}: {kinds}")
        lines.extend(f"    {s}" for s in result["error_samples"])
    elif http:
        every = p["verify_every"]
        bodies = "every body" if every == 1 else f"1 body in {every} per connection"
        lines.append(f"  errors      none (status and length of every answer, CRC-32 of {bodies})")
    else:
        lines.append(
            "  errors      none (every echoed byte checked)"
            if p["workload"] == "echo"
            else "  errors      none"
        )
    return "\n".join(lines)


def fairness_line(fair: dict, unit: str = "msgs/s") -> str:
    """The summary's line for ``per_connection`` (messages per connection in the window)."""
    what = "responses" if unit == "req/s" else "messages"
    jain = "n/a (nothing completed)" if fair["jain"] is None else f"{fair['jain']:.3f}"
    text = (
        f"  per conn    {what} min {fair['min']:,}  p50 {fair['p50']:,.0f}  "
        f"max {fair['max']:,}  Jain's index {jain} over {fair['conns']:,} conn(s)"
    )
    if fair["jain"] is not None and fair["jain"] < 0.9:
        text += " (UNEVEN: some connections got much less)"
    return text


class ProgressLine:
    """A live ``\\r`` status line on a TTY: phase and the current rate."""

    def __init__(self, stream: IO[str], total_s: float) -> None:
        self.stream = stream
        self.total_s = total_s
        self.start = time.monotonic()
        self.last_done = 0
        self.last_t = self.start

    def update(self, measuring: bool, done: int) -> None:
        now = time.monotonic()
        dt = now - self.last_t
        if dt <= 0:
            return
        rate = max(done - self.last_done, 0) / dt
        self.last_done, self.last_t = done, now
        phase = "measuring" if measuring else "warm-up  "
        self.stream.write(
            f"\r  {phase} {now - self.start:5.1f}/{self.total_s:.1f} s  {rate:>12,.0f} msgs/s "
        )
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\r" + " " * 60 + "\r")
        self.stream.flush()
