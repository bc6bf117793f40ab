"""Calibrate ``fastsock load`` against the C load client on the same C epoll echo server.

    python -m bench.calibrate_load --out results/calibrate_load.json      (make calibrate)

For each transport (UNIX, TCP) one C echo server runs; the clients take turns against it,
interleaved (C, fastsock, fastsock --procs 2, then the next repeat in the opposite order, so
neither a slow start nor a drifting machine favours one side), each run a fresh process. The
report gives, per client, the median and min-max msgs/s, the ratio of medians fastsock/C, and
the median of the per-repeat ratios (pairs run seconds apart share the machine's mood).

The targets from the load generator's issue: fastsock load >= 0.9x the C client's msgs/s at
64 B x 32 connections, and with ``--procs 2`` it drives the C server at least as hard as the C
client does. The script measures and reports; it does not decide.

With ``--pin`` the server runs on the first usable CPU and single-process clients on the second
(``--procs 2`` stays unpinned: two workers need two CPUs). Without a C compiler (and no binaries
built earlier) it prints why and exits 0: there is nothing to calibrate against.
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
from pathlib import Path

import psutil

from bench.peers.registry import LOAD_CLIENT, PEERS, build_c_peers, peer_env
from fastsock import metadata
from fastsock.address import Endpoint, tcp_endpoint, unix_endpoint
from fastsock.process import ServerProcess

REPO = Path(__file__).resolve().parent.parent


def client_argv(name: str, endpoint: Endpoint, args: argparse.Namespace, server_pid: int) -> list:
    if endpoint.is_unix:
        where = ["--unix", endpoint.path]
    else:
        where = ["--host", endpoint.host, "--port", str(endpoint.port)]
    common = ["--size", str(args.size), "--conns", str(args.conns), "--depth", str(args.depth)]
    timing = ["--duration", str(args.duration), "--warmup", str(args.warmup)]
    if name == "c-client":
        return [str(LOAD_CLIENT), *where, *common, *timing]
    procs = "2" if name == "fastsock-p2" else "1"
    return [
        sys.executable,
        "-m",
        "fastsock",
        "load",
        *where,
        *common,
        *timing,
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


def one_run(name: str, endpoint: Endpoint, server: ServerProcess, args: argparse.Namespace) -> dict:
    """Run one client to completion; its JSON plus the server's CPU use over the whole run."""
    argv = client_argv(name, endpoint, args, server.pid)
    preexec = None
    if args.pin and name != "fastsock-p2":
        cpu = args.client_cpu

        def preexec() -> None:
            os.sched_setaffinity(0, {cpu})

    sproc = psutil.Process(server.pid)
    cpu0, t0 = server_cpu_s(sproc), time.monotonic()
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=args.warmup + args.duration + 60,
        preexec_fn=preexec,
        env=peer_env(),
    )
    wall = time.monotonic() - t0
    server_busy = (server_cpu_s(sproc) - cpu0) / wall
    if proc.returncode != 0:
        raise RuntimeError(f"{name} exited {proc.returncode}: {proc.stderr.strip()[:300]}")
    out = json.loads(proc.stdout)
    errors = out["errors"]["total"] if isinstance(out["errors"], dict) else out["errors"]
    if errors:
        raise RuntimeError(f"{name} counted {errors} errors")
    if name == "c-client":
        client_util = (out["cpu_user_s"] + out["cpu_sys_s"]) / out["elapsed_s"]
    else:
        client_util = out["cpu"]["client_cpu_util"]
    return {
        "client": name,
        "msgs_per_s": out["msgs_per_s"],
        "client_cpu_util": round(client_util, 3),
        "server_cpu_util_whole_run": round(server_busy, 3),
        "argv": argv,
    }


def spread(values: list[float]) -> dict:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def calibrate_transport(transport: str, args: argparse.Namespace, tmp: str) -> dict:
    if transport == "unix":
        endpoint = unix_endpoint(os.path.join(tmp, "c-echo.sock"))
    else:
        endpoint = tcp_endpoint("127.0.0.1", 0)
    affinity = {args.server_cpu} if args.pin else None
    peer = PEERS["c-epoll"]
    runs: list[dict] = []
    with ServerProcess(peer.argv(endpoint), env=peer_env(), cpu_affinity=affinity) as server:
        endpoint = server.endpoint
        order = list(args.clients)
        for repeat in range(args.repeats):
            for name in order if repeat % 2 == 0 else reversed(order):
                run = one_run(name, endpoint, server, args)
                run["repeat"] = repeat
                runs.append(run)
                print(
                    f"  {transport:4} #{repeat} {name:12} {run['msgs_per_s']:>11,.0f} msgs/s  "
                    f"client {run['client_cpu_util']:.2f} cores  "
                    f"server {run['server_cpu_util_whole_run']:.2f} cores",
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
    ratios = {}
    if "c-client" in args.clients:
        c_median = summary["c-client"]["msgs_per_s"]["median"]
        for name in args.clients:
            if name == "c-client":
                continue
            paired = []
            for repeat in range(args.repeats):
                mine = [r for r in runs if r["repeat"] == repeat]
                a = next(r["msgs_per_s"] for r in mine if r["client"] == name)
                c = next(r["msgs_per_s"] for r in mine if r["client"] == "c-client")
                paired.append(a / c)
            ratios[name] = {
                "ratio_of_medians": summary[name]["msgs_per_s"]["median"] / c_median,
                "paired_ratios": spread(paired),
            }
    return {"transport": transport, "runs": runs, "summary": summary, "ratios_vs_c": ratios}


def report(results: list[dict]) -> str:
    lines = ["", "client         transport   median msgs/s        min-max        fastsock/C"]
    for res in results:
        for name, s in res["summary"].items():
            m = s["msgs_per_s"]
            ratio = res["ratios_vs_c"].get(name)
            rtext = ""
            if ratio:
                p = ratio["paired_ratios"]
                rtext = (
                    f"{ratio['ratio_of_medians']:.2f}x "
                    f"(paired {p['median']:.2f}, {p['min']:.2f}-{p['max']:.2f})"
                )
            lines.append(
                f"{name:14} {res['transport']:9} {m['median']:>12,.0f}  "
                f"{m['min']:>9,.0f}-{m['max']:<9,.0f}  {rtext}"
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
    parser.add_argument("--depth", type=int, default=1, help="Messages in flight per connection.")
    parser.add_argument("--transports", default="unix,tcp")
    parser.add_argument("--clients", default="c-client,fastsock-p1,fastsock-p2")
    parser.add_argument("--pin", action="store_true", help="Server on one CPU, client on another.")
    args = parser.parse_args(argv)
    args.clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    unknown = set(args.clients) - {"c-client", "fastsock-p1", "fastsock-p2"}
    if unknown or args.repeats < 1:
        parser.error(f"unknown clients {sorted(unknown)} or --repeats < 1")
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

    print(
        f"calibrate: {args.size} B x {args.conns} conns, {args.duration:g} s (+{args.warmup:g} s "
        f"warm-up) x {args.repeats} repeats, {'pinned' if args.pin else 'unpinned'}",
        flush=True,
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="fastsock-cal-") as tmp:
        for transport in args.transports.split(","):
            results.append(calibrate_transport(transport.strip(), args, tmp))
    print(report(results))
    out = {
        "schema": "fastsock.calibrate_load/1",
        "params": {k: v for k, v in vars(args).items() if k != "out"},
        "results": results,
        "metadata": metadata.for_load(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
