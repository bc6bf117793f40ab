"""How close is ``fastsock serve`` to the bare Python loop, uvloop and C? (issue #10)

    python -m bench.studies.server_speed [--rounds 3] [--duration 2] [--points quick|full]
                                 [--point unix:1M:1 ...] [--reference uvloop-protocol]
                                 [--servers uvloop-protocol,fastsock,bare-epoll,c-epoll]
                                 [--out results/server_speed.json]

Every server echoes for the C load client (``bench/peers/c/load_client.c``: it verifies every
byte and costs the least CPU per message, so the server sets the pace). For each point
(transport x size x depth, 32 connections) all servers run side by side; each round runs every
server once, in an order that rotates from round to round, so a drifting machine favours none.
The table gives, per point and server, the median msgs/s relative to uvloop (or
``--reference``) *in the same round* (median of the per-round ratios, min-max beside it) and
the server's CPU per message (µs, from its CPU time over the client's whole run divided by
the messages of that run, warm-up included): on 2 cores the client's share moves msgs/s, CPU
per message is the server's own figure. Each server is warmed up once after it starts
(``bench.peers.warm``: some servers, asyncio's among them, are slow until their first
connection has closed).

``bare-epoll`` (``bench/peers/bare_epoll.py``) is the measuring stick: 40 lines of epoll +
recv_into + send with no features. fastsock's target is >= 0.97x uvloop at every point.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.peers.registry import LOAD_CLIENT, PEERS, available_peers, peer_env
from bench.peers.warm import warm_up
from bench.studies.common import load_client_argv, study_endpoint
from fastsock import metadata
from fastsock.address import Endpoint
from fastsock.process import ServerProcess
from fastsock.units import parse_size

REFERENCE = "uvloop-protocol"
DEFAULT_SERVERS = ("uvloop-protocol", "fastsock", "bare-epoll", "c-epoll")
CONNS = 32


@dataclass(frozen=True)
class Point:
    transport: str
    size: int
    depth: int

    def label(self) -> str:
        size = f"{self.size // 1024} KiB" if self.size >= 1024 else f"{self.size} B"
        if self.size >= 1 << 20:
            size = f"{self.size >> 20} MiB"
        return f"{self.transport.upper()} {size}, depth {self.depth}"


QUICK = tuple(Point(t, 64, d) for t in ("unix", "tcp") for d in (1, 8))
FULL = (
    *QUICK,
    Point("unix", 4096, 1),
    Point("tcp", 4096, 1),
    Point("unix", 65536, 1),
    Point("tcp", 65536, 1),
    Point("unix", 1 << 20, 1),
    Point("tcp", 1 << 20, 1),
)
POINTS = {"quick": QUICK, "full": FULL}


def parse_point(text: str) -> Point:
    """``unix:1M:1`` -> Point("unix", 1048576, 1): one point, for ``--point``. SIZE is what
    ``fastsock load --size`` takes (``64``, ``4K``, ``1MiB``: :func:`fastsock.units.parse_size`)."""
    parts = text.split(":")
    if len(parts) != 3 or parts[0] not in ("unix", "tcp"):
        raise argparse.ArgumentTypeError(
            f"expected unix|tcp:SIZE:DEPTH (e.g. unix:1M:1), not {text!r}"
        )
    try:
        size, depth = parse_size(parts[1]), int(parts[2])
    except ValueError:  # SizeError is a ValueError
        raise argparse.ArgumentTypeError(
            f"SIZE must be bytes like 64, 4K, 1M and DEPTH a whole number in {text!r}"
        ) from None
    if size < 1 or depth < 1:
        raise argparse.ArgumentTypeError(f"SIZE and DEPTH must be >= 1 in {text!r}")
    return Point(parts[0], size, depth)


def run_client(endpoint: Endpoint, point: Point, args: argparse.Namespace, pid: int) -> dict:
    """One C-client run against the server ``pid``: msgs/s and the server's µs per message."""
    argv = load_client_argv(
        endpoint, size=point.size, conns=CONNS, depth=point.depth,
        duration=args.duration, warmup=args.warmup,
    )  # fmt: skip
    server = psutil.Process(pid)
    before = server.cpu_times()
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=args.duration + args.warmup + 30,
        preexec_fn=(lambda: os.sched_setaffinity(0, {1})) if args.pin else None,
    )
    after = server.cpu_times()
    if proc.returncode != 0:
        raise RuntimeError(f"load_client failed: {proc.stderr.strip() or proc.stdout.strip()}")
    raw = json.loads(proc.stdout)
    cpu = (after.user - before.user) + (after.system - before.system)
    return {
        "msgs_per_s": raw["msgs_per_s"],
        "server_cpu_s": round(cpu, 4),
        "server_us_per_msg": round(cpu / raw["total_messages"] * 1e6, 4),
        "client_cpu_util": round((raw["cpu_user_s"] + raw["cpu_sys_s"]) / raw["elapsed_s"], 3),
    }


def measure_point(point: Point, servers: list[str], args: argparse.Namespace) -> dict:
    """Start every server for ``point``, run the interleaved rounds, stop them by PID."""
    runs: dict[str, list[dict]] = {name: [] for name in servers}
    with tempfile.TemporaryDirectory(prefix="fastsock-speed-") as tmp:
        started: dict[str, ServerProcess] = {}
        try:
            for name in servers:
                where = study_endpoint(point.transport, tmp, f"{name}.sock")
                started[name] = ServerProcess(
                    PEERS[name].argv(where),
                    env=peer_env(),
                    cpu_affinity={0} if args.pin else None,
                )
                warm_up(started[name].endpoint)
            for rnd in range(args.rounds):
                shift = rnd % len(servers)
                for name in servers[shift:] + servers[:shift]:
                    server = started[name]
                    try:
                        runs[name].append(run_client(server.endpoint, point, args, server.pid))
                    except (RuntimeError, OSError, ValueError) as err:
                        # A failed run is data too: say so, leave it out of the medians.
                        print(f"server_speed: {name} {point.label()}: {err}", file=sys.stderr)
        finally:
            for server in started.values():
                server.stop()
    return runs


def summarise(point: Point, runs: dict[str, list[dict]], reference: str = REFERENCE) -> dict:
    ref = runs.get(reference)
    out = {}
    for name, samples in runs.items():
        if not samples:
            out[name] = {"runs": [], "failed": True}
            continue
        entry = {
            "msgs_per_s": statistics.median(r["msgs_per_s"] for r in samples),
            "server_us_per_msg": statistics.median(r["server_us_per_msg"] for r in samples),
            "client_cpu_util": statistics.median(r["client_cpu_util"] for r in samples),
            "runs": samples,
        }
        if ref and len(ref) == len(samples):
            ratios = [s["msgs_per_s"] / r["msgs_per_s"] for s, r in zip(samples, ref, strict=True)]
            entry["vs_reference"] = {
                "median": statistics.median(ratios),
                "min": min(ratios),
                "max": max(ratios),
            }
        out[name] = entry
    return {"point": point.__dict__ | {"conns": CONNS}, "label": point.label(), "servers": out}


def table(results: list[dict], servers: list[str]) -> str:
    """A Markdown table: ratio to uvloop (min-max) and server µs per message, per server."""
    head = "| point | " + " | ".join(servers) + " |"
    lines = [head, "|---" * (len(servers) + 1) + "|"]
    for res in results:
        cells = []
        for name in servers:
            entry = res["servers"][name]
            if entry.get("failed"):
                cells.append("failed")
                continue
            ratio = entry.get("vs_reference")
            text = (
                f"{ratio['median']:.2f}× ({ratio['min']:.2f}–{ratio['max']:.2f})" if ratio else ""
            )
            text += f" · {entry['server_us_per_msg']:.2f} µs"
            cells.append(text.strip(" ·"))
        lines.append(f"| {res['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--points", choices=sorted(POINTS), default="full")
    parser.add_argument(
        "--point",
        type=parse_point,
        action="append",
        metavar="T:SIZE:DEPTH",
        help="measure only this point (repeatable), e.g. unix:1M:1; replaces --points",
    )
    parser.add_argument(
        "--reference",
        default=REFERENCE,
        help=f"the server the others are divided by, round by round (default {REFERENCE})",
    )
    parser.add_argument("--servers", default=",".join(DEFAULT_SERVERS))
    parser.add_argument(
        "--pin",
        action="store_true",
        help="server on CPU 0, client on CPU 1 (no migrations: less spread between rounds)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("need --rounds >= 1, --duration > 0, --warmup >= 0")
    servers = [s for s in args.servers.split(",") if s]
    unknown = [s for s in servers if s not in PEERS]
    if unknown:
        parser.error(f"unknown server(s): {', '.join(unknown)} (known: {', '.join(PEERS)})")
    status = available_peers()
    missing = {s: status[s] for s in servers if status[s] is not None}
    for name, reason in missing.items():
        print(f"server_speed: skipping {name}: {reason}", file=sys.stderr)
    servers = [s for s in servers if s not in missing]
    if args.reference not in servers:
        print(
            f"server_speed: no ratios: the reference {args.reference} is not measured",
            file=sys.stderr,
        )
    if not LOAD_CLIENT.exists():
        print("server_speed: the C load client is not built (no cc?); nothing to measure")
        return 0
    started = time.monotonic()
    results = []
    for point in args.point or POINTS[args.points]:
        print(f"server_speed: {point.label()} ...", file=sys.stderr, flush=True)
        results.append(summarise(point, measure_point(point, servers, args), args.reference))
    print(
        f"msgs/s vs {args.reference} in the same rounds (median, min-max of {args.rounds} "
        "rounds) · server CPU per message"
    )
    print(table(results, servers))
    if args.out:
        doc = {
            "schema": "fastsock.server_speed/1",
            "reference": args.reference,
            "settings": {
                "rounds": args.rounds,
                "duration": args.duration,
                "warmup": args.warmup,
                "conns": CONNS,
                "client": "c-load-client",
                "pinned": args.pin,
            },
            "metadata": metadata.for_bench(),
            "wall_s": round(time.monotonic() - started, 1),
            "results": results,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
