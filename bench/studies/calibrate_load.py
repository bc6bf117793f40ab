"""Calibrate ``fastsock load``'s two engines against a bare C client on the same C echo server.

    python -m bench.studies.calibrate_load --out results/calibrate_load.json      (make calibrate)

Clients (``--clients``, the first one is the baseline every ratio divides by):
``c-plain`` the C load client with ``--no-verify`` (same loop as the native engine, but no
byte compare and no clock read per message: the bare epoll client); ``c-client`` the C load
client as the harness runs it (verifies, no latencies); ``native-p1`` ``fastsock load --engine
native`` (verifies, records every latency); ``python-p1`` / ``python-p2`` the Python engine with
one or two processes.

For each transport (UNIX, TCP) and depth one C echo server runs; the clients take turns against
it, interleaved (then the next repeat in the opposite order, so neither a slow start nor a
drifting machine favours one side), each run a fresh process. Each server is warmed up once
before its first measured run (``bench.peers.warm``): a fresh asyncio server ran its first load
4-5x slower than every later one until a connection had closed. The report gives, per client, the
median and min-max msgs/s, the ratio of medians to the baseline, and the median of the
per-repeat ratios (pairs run seconds apart share the machine's mood).

The targets from issue 11: native >= 0.95x c-plain at 64 B x 32 connections, depth 1 and 8,
UNIX and TCP (timestamps + verification cost under 5%). The script measures and reports; it
does not decide.

With ``--pin`` the server runs on the first usable CPU and single-process clients on the second
(``--procs 2`` stays unpinned: two workers need two CPUs). Without a C compiler (and no binaries
built earlier) it prints why and exits 0: there is nothing to calibrate against.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.peers.registry import LOAD_CLIENT, PEERS, build_c_peers, peer_env
from bench.peers.warm import warm_up
from bench.studies.common import print_plan, study_endpoint, write_study
from fastsock.address import Endpoint
from fastsock.pressure import cpu_pressure_us, pressure_share
from fastsock.process import ServerProcess
from fastsock.report.summary import spread_record as spread

REPO = Path(__file__).resolve().parents[2]


CLIENTS = ("c-plain", "c-client", "native-p1", "python-p1", "python-p2")


def client_argv(
    name: str, endpoint: Endpoint, args: argparse.Namespace, depth: int, server_pid: int
) -> list:
    if endpoint.is_unix:
        where = ["--unix", endpoint.path]
    else:
        where = ["--host", endpoint.host, "--port", str(endpoint.port)]
    common = ["--size", str(args.size), "--conns", str(args.conns), "--depth", str(depth)]
    timing = ["--duration", str(args.duration), "--warmup", str(args.warmup)]
    if name == "c-client":
        return [str(LOAD_CLIENT), *where, *common, *timing]
    if name == "c-plain":
        return [str(LOAD_CLIENT), *where, *common, *timing, "--no-verify"]
    engine, procs = name.split("-p")
    # Open loop (agree_load --rate): the same offered rate for every fastsock client.
    if getattr(args, "rate", None):
        timing += ["--rate", str(args.rate)]
    return [
        sys.executable,
        "-m",
        "fastsock",
        "load",
        *where,
        *common,
        *timing,
        "--engine",
        engine,
        "--procs",
        procs,
        "--server-pid",
        str(server_pid),
        "--json",
        "-",
        "-q",
    ]


def server_cpu_s(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def one_run(
    name: str, endpoint: Endpoint, server: ServerProcess, args: argparse.Namespace, depth: int
) -> dict:
    """Run one client to completion; its JSON plus the server's CPU use over the whole run."""
    argv = client_argv(name, endpoint, args, depth, server.pid)
    preexec = None
    if args.pin and not name.endswith("-p2"):
        cpu = args.client_cpu

        def preexec() -> None:
            os.sched_setaffinity(0, {cpu})

    sproc = psutil.Process(server.pid)
    cpu0, t0, psi0 = server_cpu_s(sproc), time.monotonic(), cpu_pressure_us()
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=args.warmup + args.duration + 60,
        preexec_fn=preexec,
        env=peer_env(),
    )
    wall = time.monotonic() - t0
    pressure = pressure_share(psi0, cpu_pressure_us(), wall)
    server_busy = (server_cpu_s(sproc) - cpu0) / wall
    if proc.returncode != 0:
        raise RuntimeError(f"{name} exited {proc.returncode}: {proc.stderr.strip()[:300]}")
    out = json.loads(proc.stdout)
    errors = out["errors"]["total"] if isinstance(out["errors"], dict) else out["errors"]
    if errors:
        raise RuntimeError(f"{name} counted {errors} errors")
    # The C client reports CPU seconds; fastsock load its utilisation over the measured window,
    # and the server's over the same window (--server-pid).
    if name.startswith("c-"):
        client_util = (out["cpu_user_s"] + out["cpu_sys_s"]) / out["elapsed_s"]
        cores, server_window = 1, None
    else:
        client_util = out["cpu"]["client_cpu_util"]
        cores, server_window = out["cpu"]["client_cores"], out["cpu"]["server_cpu_util"]
    return {
        "client": name,
        "msgs_per_s": out["msgs_per_s"],
        "p50_us": None if name.startswith("c-") else out["latency_us"]["p50"],
        "client_cpu_util": round(client_util, 3),
        "client_cores": cores,
        "server_cpu_util_whole_run": round(server_busy, 3),
        "server_cpu_util_window": None if server_window is None else round(server_window, 3),
        # Other work on the machine takes CPU from both sides: context for every figure above.
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "cpu_pressure": pressure,
        "argv": argv,
    }


def server_argv(args: argparse.Namespace, endpoint: Endpoint) -> list[str]:
    """The command line of ``args.server`` on ``endpoint``, plus ``args.server_options`` when a
    study sets them (appended: where the peer already gives an option, click takes the last)."""
    return [*PEERS[args.server].argv(endpoint), *getattr(args, "server_options", ())]


def calibrate_transport(transport: str, depth: int, args: argparse.Namespace, tmp: str) -> dict:
    endpoint = study_endpoint(transport, tmp)
    affinity = {args.server_cpu} if args.pin else None
    runs: list[dict] = []
    argv = server_argv(args, endpoint)
    with ServerProcess(argv, env=peer_env(), cpu_affinity=affinity) as server:
        endpoint = server.endpoint
        # Before the first measured run, not just each run's own --warmup: a fresh asyncio
        # server stays 4-5x slower until its first connection has closed (bench.peers.warm).
        warm_up(endpoint)
        order = list(args.clients)
        for repeat in range(args.repeats):
            for name in order if repeat % 2 == 0 else reversed(order):
                run = one_run(name, endpoint, server, args, depth)
                run["repeat"] = repeat
                runs.append(run)
                rate = getattr(args, "rate", None)
                print(
                    f"  {transport:4} {f'r{rate:g}' if rate else f'd{depth}'} #{repeat} {name:10} "
                    f"{run['msgs_per_s']:>11,.0f} msgs/s  "
                    f"client {run['client_cpu_util']:.2f} cores  "
                    f"server {run['server_cpu_util_whole_run']:.2f} cores"
                    + (f"  p50 {run['p50_us']:,.0f} us" if run["p50_us"] is not None else ""),
                    flush=True,
                )
    summary = {}
    for name in args.clients:
        mine = [r for r in runs if r["client"] == name]
        summary[name] = {
            "msgs_per_s": spread([r["msgs_per_s"] for r in mine]),
            "client_cpu_util": spread([r["client_cpu_util"] for r in mine]),
            "server_cpu_util": spread([r["server_cpu_util_whole_run"] for r in mine]),
        }
        if mine[0]["p50_us"] is not None:
            summary[name]["p50_us"] = spread([r["p50_us"] for r in mine])
    ratios = {}
    base = args.clients[0]
    base_median = summary[base]["msgs_per_s"]["median"]
    for name in args.clients[1:]:
        paired = []
        for repeat in range(args.repeats):
            mine = [r for r in runs if r["repeat"] == repeat]
            a = next(r["msgs_per_s"] for r in mine if r["client"] == name)
            b = next(r["msgs_per_s"] for r in mine if r["client"] == base)
            paired.append(a / b)
        ratios[name] = {
            "ratio_of_medians": summary[name]["msgs_per_s"]["median"] / base_median,
            "paired_ratios": spread(paired),
        }
    return {
        "transport": transport,
        "depth": depth,
        "baseline": base,
        "runs": runs,
        "summary": summary,
        "ratios_vs_baseline": ratios,
    }


def report(results: list[dict]) -> str:
    base = results[0]["baseline"] if results else "?"
    lines = ["", f"client      transport depth  median msgs/s        min-max        x {base}"]
    for res in results:
        for name, s in res["summary"].items():
            m = s["msgs_per_s"]
            ratio = res["ratios_vs_baseline"].get(name)
            rtext = ""
            if ratio:
                p = ratio["paired_ratios"]
                rtext = (
                    f"{ratio['ratio_of_medians']:.2f}x "
                    f"(paired {p['median']:.2f}, {p['min']:.2f}-{p['max']:.2f})"
                )
            p50 = s.get("p50_us")
            ptext = f"  p50 {p50['median']:,.0f} us" if p50 else ""
            lines.append(
                f"{name:11} {res['transport']:9} {res['depth']:>5} {m['median']:>12,.0f}  "
                f"{m['min']:>9,.0f}-{m['max']:<9,.0f}  {rtext}{ptext}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="Write the JSON here.")
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--conns", type=int, default=32)
    parser.add_argument("--depths", default="1,8", help="Messages in flight per connection.")
    parser.add_argument("--transports", default="unix,tcp")
    parser.add_argument(
        "--server",
        default="c-epoll",
        choices=sorted(PEERS),
        help="The echo server. Whether the engines agree on another server where neither is "
        "client-bound: bench.studies.agree_load (make calibrate-agree).",
    )
    parser.add_argument(
        "--clients",
        default="c-plain,native-p1,c-client,python-p1",
        help=f"Comma-separated, the first is the baseline; of {', '.join(CLIENTS)}.",
    )
    parser.add_argument("--pin", action="store_true", help="Server on one CPU, client on another.")
    args = parser.parse_args(argv)
    args.clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    unknown = set(args.clients) - set(CLIENTS)
    if unknown or args.repeats < 1 or not args.clients:
        parser.error(f"unknown clients {sorted(unknown)}, no client or --repeats < 1")
    try:
        args.depths = [int(d) for d in args.depths.split(",")]
    except ValueError:
        parser.error(f"--depths: comma-separated integers, not {args.depths!r}")
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            parser.error("--pin needs two usable CPUs")
        args.server_cpu, args.client_cpu = cpus[0], cpus[1]

    status = build_c_peers()
    missing = {name: why for name, why in status.items() if why}
    if missing:
        for name, why in missing.items():
            print(f"calibrate: skipped, C {name} unavailable: {why}")
        return 0

    print_plan("calibrate", args, args.server, "pinned" if args.pin else "unpinned")
    results = []
    with tempfile.TemporaryDirectory(prefix="fastsock-cal-") as tmp:
        for transport in args.transports.split(","):
            for depth in args.depths:
                results.append(calibrate_transport(transport.strip(), depth, args, tmp))
    print(report(results))
    write_study(args, "fastsock.calibrate_load/2", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
