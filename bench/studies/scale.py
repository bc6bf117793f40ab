"""How do throughput, tail latency, memory and fairness change as connections grow? (issue #24)

    python -m bench.studies.scale [--servers fastsock,fastsock-uring,uvloop-protocol,c-epoll]
                                  [--conns 1,100,1000,8000] [--sizes 64,64K] [--rounds 3]
                                  [--duration 3] [--warmup 0.5] [--idle 8000]
                                  [--out results/scale.json]

Two measuring functions the benchmark matrix can call one point at a time:

- :func:`measure_load`: a fresh server, then ``fastsock load`` (closed loop, every byte
  verified) with N connections: msgs/s, p99, ``per_connection`` (Jain's index), and the
  server's peak RSS (``VmHWM`` of ``/proc/PID/status``, its children's not counted) with the
  RSS per connection ((peak - RSS before the run) / N). A fresh server per run, so the peak is
  this run's.
- :func:`measure_idle`: a fresh server, N connections opened and left quiet: RSS per idle
  connection ((VmRSS with them - VmRSS before) / N), once just after accepting (``idle``) and
  once after one 64 B echo on each (``after_echo``: a connection that has talked once, which
  is when a per-connection buffer gets its first page).

The CLI runs every server once per round, in an order that rotates from round to round (a
drifting machine favours none), and prints ratios to ``--reference`` in the same round. Open
files: the soft limit is raised to the hard one (20,000 here: ~8,000-9,000 connections per
side, client and server each holding one end).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.peers.registry import PEERS, available_peers, peer_env
from bench.studies.common import study_endpoint, write_study
from fastsock.address import Endpoint
from fastsock.process import ServerProcess
from fastsock.units import parse_size

SCHEMA = "fastsock.scale/1"
REFERENCE = "fastsock"
DEFAULT_SERVERS = ("fastsock", "fastsock-uring", "uvloop-protocol", "c-epoll")
# Variants of the registry's peers this study adds. (fastsock-uring-own, --uring-pool off, went
# with that option: results files that name it stay readable.)
VARIANTS: dict[str, tuple[str, list[str]]] = {
    # The same 16 MiB as the default pool in 4x the buffers (64 KiB each).
    "fastsock-uring-64k": ("fastsock-uring", ["--uring-pool", "256x64K"]),
    # The io_uring engine without large mode (pool RECVs for every size): for paired on / off.
    "fastsock-uring-nolarge": ("fastsock-uring", ["--uring-no-large"]),
}
CONNECT_TIMEOUT_S = 30.0


def raise_nofile() -> int:
    """Raise this process's open-file soft limit to the hard limit (inherited by the servers
    and ``fastsock load`` started from here); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


def base_name(name: str) -> str:
    """The registry peer a server name stands for (``X``, a :data:`VARIANTS` entry, or
    ``X@TREE``)."""
    name = name.partition("@")[0]
    return VARIANTS[name][0] if name in VARIANTS else name


def server_argv(name: str, endpoint: Endpoint) -> list[str]:
    """The command line of server ``name``: a registry peer, a :data:`VARIANTS` entry, or
    either as ``NAME@TREE``, fastsock run from another source tree (a checkout of an earlier
    commit: what a change bought, paired against it in one run)."""
    name, _, tree = name.partition("@")
    if tree:
        python, *rest = server_argv(name, endpoint)
        if rest[:2] != ["-m", "fastsock"]:
            raise ValueError(f"{name}@TREE: {name} is not a fastsock server")
        # -P: python -m puts the working directory first on sys.path, ahead of PYTHONPATH, so
        # without it the tree in the working directory is what runs (an A/A in disguise).
        return ["env", f"PYTHONPATH={Path(tree).resolve()}", python, "-P", *rest]
    if name in VARIANTS:
        base, extra = VARIANTS[name]
        return [*PEERS[base].argv(endpoint), *extra]
    return PEERS[name].argv(endpoint)


def proc_status_kb(pid: int, field: str) -> int:
    """A ``kB`` field of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``, ``VmSize``)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(f"{field} not in /proc/{pid}/status")


def run_fastsock_load(
    endpoint: Endpoint,
    *,
    conns: int,
    size: int,
    duration: float,
    warmup: float,
    depth: int = 1,
    server_pid: int | None = None,
    engine: str = "auto",
) -> dict:
    """One ``fastsock load --json -`` run (a subprocess: its memory and CPU are not ours)."""
    where = ["--unix", endpoint.path] if endpoint.is_unix else ["--port", str(endpoint.port)]
    argv = [
        sys.executable, "-m", "fastsock", "load", *where, "--size", str(size),
        "--conns", str(conns), "--depth", str(depth), "--duration", str(duration),
        "--warmup", str(warmup), "--engine", engine, "--json", "-",
    ]  # fmt: skip
    if server_pid is not None:
        argv += ["--server-pid", str(server_pid)]
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=duration + warmup + 120,
        env=peer_env(),
    )
    if proc.returncode not in (0, 1):  # 1: the run happened, with errors (they are data)
        raise RuntimeError(f"fastsock load failed: {proc.stderr.strip() or proc.stdout.strip()}")
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        last = (proc.stderr.strip().splitlines() or ["nothing on stderr"])[-1]
        raise RuntimeError(
            f"fastsock load exited {proc.returncode} without its JSON: {last[:300]}"
        ) from None


def measure_load(
    argv: list[str],
    endpoint: Endpoint,
    *,
    conns: int,
    size: int,
    duration: float = 3.0,
    warmup: float = 0.5,
    depth: int = 1,
) -> dict:
    """Start the server ``argv`` (listening on ``endpoint``), load it with ``conns``
    connections of ``size``-byte echoes, stop it; msgs/s, p99, fairness and memory."""
    raise_nofile()
    server = ServerProcess(argv, env=peer_env(), ready_timeout=30)
    try:
        rss_before = proc_status_kb(server.pid, "VmRSS")
        result = run_fastsock_load(
            server.endpoint,
            conns=conns,
            size=size,
            duration=duration,
            warmup=warmup,
            depth=depth,
            server_pid=server.pid,
        )
        hwm = proc_status_kb(server.pid, "VmHWM")
        vsize = proc_status_kb(server.pid, "VmPeak")
    finally:
        server.stop()
    lat = result.get("latency_us") or {}
    return {
        "conns": conns,
        "size": size,
        "depth": depth,
        "msgs_per_s": result["msgs_per_s"],
        "p50_us": lat.get("p50"),
        "p99_us": lat.get("p99"),
        "errors": result["errors"]["total"],
        "conns_alive": result["conns_alive"],
        "per_connection": result.get("per_connection"),
        "server_rss_before_kb": rss_before,
        "server_peak_rss_kb": hwm,
        "server_peak_virtual_kb": vsize,
        "rss_per_conn_kb": round((hwm - rss_before) / conns, 3),
        "client_bound": result["cpu"]["client_bound"],
        "server_cpu_util": result["cpu"]["server_cpu_util"],
    }


def _connect_all(endpoint: Endpoint, count: int) -> list[socket.socket]:
    family = socket.AF_UNIX if endpoint.is_unix else socket.AF_INET
    socks: list[socket.socket] = []
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    try:
        for _ in range(count):
            s = socket.socket(family, socket.SOCK_STREAM)
            socks.append(s)
            s.settimeout(CONNECT_TIMEOUT_S)
            while True:
                try:
                    s.connect(endpoint.sockaddr)
                    break
                except BlockingIOError:
                    # A UNIX listener's backlog is full (EAGAIN, not a wait): let it accept.
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.001)
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def _wait_for_fds(pid: int, at_least: int, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Until the server holds ``at_least`` descriptors (it accepted the connections)."""
    deadline = time.monotonic() + timeout
    while len(os.listdir(f"/proc/{pid}/fd")) < at_least:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server accepted fewer than {at_least} connections")
        time.sleep(0.05)


def _settled_rss(pid: int, settle: float = 0.3) -> int:
    """VmRSS once it stops moving (a server may still be setting connections up)."""
    last = proc_status_kb(pid, "VmRSS")
    for _ in range(20):
        time.sleep(settle)
        now = proc_status_kb(pid, "VmRSS")
        if now == last:
            return now
        last = now
    return last


def measure_idle(argv: list[str], endpoint: Endpoint, *, conns: int) -> dict:
    """Start the server ``argv``, open ``conns`` quiet connections to it from this process;
    RSS per idle connection before and after one 64 B echo on each."""
    raise_nofile()
    server = ServerProcess(argv, env=peer_env(), ready_timeout=30)
    socks: list[socket.socket] = []
    try:
        fds_before = len(os.listdir(f"/proc/{server.pid}/fd"))
        rss_before = _settled_rss(server.pid)
        socks = _connect_all(server.endpoint, conns)
        _wait_for_fds(server.pid, fds_before + conns)
        rss_idle = _settled_rss(server.pid)
        payload = b"x" * 64
        for s in socks:
            s.sendall(payload)
        for s in socks:
            got = 0
            while got < len(payload):
                chunk = s.recv(len(payload) - got)
                if not chunk:
                    raise RuntimeError("the server closed an idle connection")
                got += len(chunk)
        rss_echo = _settled_rss(server.pid)
        hwm = proc_status_kb(server.pid, "VmHWM")
    finally:
        for s in socks:
            s.close()
        server.stop()
    return {
        "conns": conns,
        "server_rss_before_kb": rss_before,
        "server_rss_idle_kb": rss_idle,
        "server_rss_after_echo_kb": rss_echo,
        "server_peak_rss_kb": hwm,
        "idle_kb_per_conn": round((rss_idle - rss_before) / conns, 3),
        "after_echo_kb_per_conn": round((rss_echo - rss_before) / conns, 3),
    }


def paired(
    a: str,
    b: str,
    *,
    transport: str,
    tmp: str,
    conns: int,
    size: int,
    trials: int,
    trial_s: float,
    warmup: float = 0.2,
    depth: int = 1,
    seed: int | None = None,
    restarts: int = 2,
) -> dict:
    """Servers ``a`` and ``b`` side by side (stopped by PID), ``trials`` short ``fastsock
    load`` runs of each in a random, balanced, paired order: the msgs/s and p99 findings
    A / B with their 95% CIs (:func:`fastsock.findings.finding`). For small ratios on a shared
    machine, where a fresh server per run (:func:`measure_load`) costs too much.

    The trials are split into ``restarts`` blocks, each with a new pair of servers started in
    alternating order (A first, then B first): with one start order, an A/A run of the io_uring
    engine favoured the second-started server by 3-4% (issue #24), a bias the random trial
    order cannot remove; and new instances put their variance into the sample."""
    from fastsock.findings import finding
    from fastsock.trials import ab_order

    raise_nofile()
    values: dict[str, list[dict]] = {"a": [], "b": []}
    orders = ab_order(trials, seed)
    blocks = max(1, min(restarts, trials))
    for block in range(blocks):
        first = ("a", "b") if block % 2 == 0 else ("b", "a")
        these = orders[block * trials // blocks : (block + 1) * trials // blocks]
        _paired_block(
            {"a": a, "b": b}, first, these,
            values, transport=transport, tmp=tmp, conns=conns, size=size, trial_s=trial_s,
            warmup=warmup, depth=depth, block=block,
        )  # fmt: skip
    what = f"{conns} conns x {size} B"

    def findings(per_side: Callable[[list[dict], str], list], suffix: str, note: str) -> list:
        return [
            finding(
                f"scale-{metric}-{a}-vs-{b}-{conns}x{size}{suffix}",
                f"{metric}: {a} / {b}, {what}{note}",
                a,
                b,
                metric,
                per_side(values["a"], metric),
                per_side(values["b"], metric),
                higher_is_better=metric == "msgs_per_s",
            )
            for metric in ("msgs_per_s", "p99_us", "server_us_per_msg")
        ]

    return {
        "a": a,
        "b": b,
        "conns": conns,
        "size": size,
        "restarts": blocks,
        "findings": findings(lambda side, metric: [v[metric] for v in side], "", ""),
        # The same ratios with one value per restart (each block's geometric means), so the
        # CI spans the instance-to-instance spread too: trials of one pair of server instances
        # are not independent (an A/A run's blocks ranged 0.94-1.10 at 8,000 x 64 KiB).
        "findings_by_restart": findings(block_means, "-by-restart", ", one value per restart"),
        "trials": values,
    }


def block_means(trials: list[dict], metric: str) -> list[float | None]:
    """The geometric mean of ``metric`` over each block's trials, block by block (None for a
    block without a positive value). The mean of a block's paired log ratios is the log of
    the ratio of its two sides' geometric means, so findings from these are per-block means."""
    by_block: dict[int, list[float]] = {}
    for t in trials:
        value = t.get(metric)
        logs = by_block.setdefault(t["block"], [])
        if value is not None and value > 0:
            logs.append(math.log(value))
    return [
        math.exp(sum(logs) / len(logs)) if logs else None for _, logs in sorted(by_block.items())
    ]


def _paired_block(
    names: dict[str, str],
    first: tuple[str, str],
    orders: list[tuple[str, str]],
    values: dict[str, list[dict]],
    *,
    transport: str,
    tmp: str,
    conns: int,
    size: int,
    trial_s: float,
    warmup: float,
    depth: int,
    block: int,
) -> None:
    """One block of :func:`paired`: start the two servers in the order ``first``, run
    ``orders``' trials against them, append to ``values``, stop both (by PID)."""
    started: dict[str, ServerProcess] = {}
    try:
        for key in first:
            where = study_endpoint(transport, tmp, f"paired-{key}.sock")
            started[key] = ServerProcess(
                server_argv(names[key], where), env=peer_env(), ready_timeout=30
            )
        for order in orders:
            for key in order:
                server = started[key]
                result = run_fastsock_load(
                    server.endpoint, conns=conns, size=size, duration=trial_s, warmup=warmup,
                    depth=depth, server_pid=server.pid,
                )  # fmt: skip
                util = result["cpu"]["server_cpu_util"]
                rate = result["msgs_per_s"]
                values[key].append(
                    {
                        "msgs_per_s": rate,
                        # The server's CPU per message: less moved by the other processes on a
                        # busy machine than msgs/s is (the client's share moves msgs/s).
                        "server_us_per_msg": util / rate * 1e6 if util and rate else None,
                        "p99_us": (result.get("latency_us") or {}).get("p99"),
                        "errors": result["errors"]["total"],
                        "jain": (result.get("per_connection") or {}).get("jain"),
                        "load_avg_1min": os.getloadavg()[0],
                        "block": block,
                        "started_first": key == first[0],
                    }
                )
    finally:
        for server in started.values():
            server.stop()


def _median(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def summarise(runs: dict[str, list[dict]], reference: str) -> dict:
    """Per server: medians, and the same-round ratios to ``reference`` (msgs/s, peak RSS)."""
    out: dict[str, dict] = {}
    ref = runs.get(reference) or []
    for name, samples in runs.items():
        entry: dict = {
            "msgs_per_s": _median(samples, "msgs_per_s"),
            "p99_us": _median(samples, "p99_us"),
            "server_peak_rss_kb": _median(samples, "server_peak_rss_kb"),
            "rss_per_conn_kb": _median(samples, "rss_per_conn_kb"),
            "jain": statistics.median(
                [
                    r["per_connection"]["jain"]
                    for r in samples
                    if (r.get("per_connection") or {}).get("jain") is not None
                ]
                or [float("nan")]
            ),
            "runs": samples,
        }
        if ref and name != reference and len(ref) == len(samples):
            for key in ("msgs_per_s", "server_peak_rss_kb"):
                ratios = [s[key] / r[key] for s, r in zip(samples, ref, strict=True) if r[key]]
                if ratios:
                    entry[f"{key}_vs_{reference}"] = {
                        "median": round(statistics.median(ratios), 3),
                        "min": round(min(ratios), 3),
                        "max": round(max(ratios), 3),
                    }
        out[name] = entry
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default=",".join(DEFAULT_SERVERS))
    parser.add_argument("--reference", default=REFERENCE)
    parser.add_argument("--transport", choices=("unix", "tcp"), default="unix")
    parser.add_argument("--conns", default="1,100,1000,8000")
    parser.add_argument("--sizes", default="64,64K")
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument(
        "--idle", type=int, default=0, metavar="N", help="also measure N idle connections"
    )
    parser.add_argument(
        "--paired",
        metavar="A,B",
        help="instead: A / B in paired, interleaved short trials (--rounds trials of "
        "--duration s each), at every --conns x --sizes point; NAME@TREE runs fastsock server "
        "NAME from source tree TREE (e.g. a git worktree of the commit before a change)",
    )
    parser.add_argument(
        "--restarts",
        type=int,
        default=2,
        metavar="K",
        help="with --paired: split the trials into K blocks, each with new servers started "
        "in alternating order (removes the start-order bias)",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.restarts < 1:
        parser.error(f"--restarts must be 1 or more, not {args.restarts}")
    servers = [s for s in args.servers.split(",") if s]
    named = servers + (args.paired.split(",") if args.paired else [])
    unknown = [s for s in named if base_name(s) not in PEERS]
    if unknown:
        parser.error(f"unknown server(s): {', '.join(unknown)}")
    status = available_peers()
    for name in list(servers):
        why = status.get(base_name(name))
        if why is not None:
            print(f"scale: skipping {name}: {why}", file=sys.stderr)
            servers.remove(name)
    limit = raise_nofile()
    print(f"scale: open files {limit}", file=sys.stderr)
    if args.paired:
        return _main_paired(args)
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="fastsock-scale-") as tmp:
        for size in [parse_size(s) for s in args.sizes.split(",") if s]:
            for conns in [int(c) for c in args.conns.split(",") if c]:
                runs: dict[str, list[dict]] = {name: [] for name in servers}
                for rnd in range(args.rounds):
                    shift = rnd % len(servers)
                    for name in servers[shift:] + servers[:shift]:
                        where = study_endpoint(args.transport, tmp, f"{name}.sock")
                        load = os.getloadavg()[0]
                        try:
                            run = measure_load(
                                server_argv(name, where), where, conns=conns, size=size,
                                duration=args.duration, warmup=args.warmup, depth=args.depth,
                            )  # fmt: skip
                        except (RuntimeError, OSError, ValueError) as err:
                            print(f"scale: {name} {conns} x {size}: {err}", file=sys.stderr)
                            continue
                        run["load_avg_1min"] = load
                        runs[name].append(run)
                        print(
                            f"scale: {name:20} {conns:5} x {size:6} B  "
                            f"{run['msgs_per_s']:>10,.0f} msgs/s  p99 {run['p99_us']} us  "
                            f"peak RSS {run['server_peak_rss_kb'] / 1024:.1f} MB  "
                            f"jain {(run['per_connection'] or {}).get('jain')}",
                            file=sys.stderr,
                            flush=True,
                        )
                results.append(
                    {
                        "kind": "load",
                        "size": size,
                        "conns": conns,
                        "servers": summarise(runs, args.reference),
                    }
                )
        if args.idle:
            for rnd in range(args.rounds):
                for name in servers:
                    where = study_endpoint(args.transport, tmp, f"{name}-idle.sock")
                    try:
                        idle = measure_idle(server_argv(name, where), where, conns=args.idle)
                    except (RuntimeError, OSError) as err:
                        print(f"scale: idle {name}: {err}", file=sys.stderr)
                        continue
                    print(
                        f"scale: idle {name:20} {args.idle} conns: "
                        f"{idle['idle_kb_per_conn']:.2f} KiB/conn idle, "
                        f"{idle['after_echo_kb_per_conn']:.2f} after one echo",
                        file=sys.stderr,
                        flush=True,
                    )
                    results.append({"kind": "idle", "server": name, "round": rnd, **idle})
    if args.out:
        write_study(args, SCHEMA, results)
    else:
        json.dump(results, sys.stdout, indent=1)
        print()
    return 0


def _main_paired(args: argparse.Namespace) -> int:
    a, _, b = args.paired.partition(",")
    results = []
    with tempfile.TemporaryDirectory(prefix="fastsock-scale-") as tmp:
        for size in [parse_size(s) for s in args.sizes.split(",") if s]:
            for conns in [int(c) for c in args.conns.split(",") if c]:
                load = os.getloadavg()
                res = paired(
                    a, b, transport=args.transport, tmp=tmp, conns=conns, size=size,
                    trials=args.rounds, trial_s=args.duration, warmup=args.warmup,
                    depth=args.depth, restarts=args.restarts,
                )  # fmt: skip
                res["load_avg_before"] = load
                res["load_avg_after"] = os.getloadavg()
                results.append(res)
                for f in res["findings"] + res["findings_by_restart"]:
                    print(
                        f"scale: {f['question']}: {f['estimate']:.3f} "
                        f"({f['ci_low']:.3f}-{f['ci_high']:.3f}, n={f['n']}) {f['verdict']}; "
                        f"load {load[0]:.2f} -> {res['load_avg_after'][0]:.2f}",
                        file=sys.stderr,
                        flush=True,
                    )
    if args.out:
        write_study(args, SCHEMA, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
