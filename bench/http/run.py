"""Static files: fastsock (sendfile and copy) against nginx, over TCP and UNIX sockets.

    python -m bench.http --out results/http.json                  (quick: 1 KiB, 16 MiB)
    python -m bench.http --profile full --out results/http.json   (4 KiB ... 256 MiB)

Servers, each started once and left running (an idle server costs nothing):

- ``fastsock``      ``fastsock serve --mode http`` (os.sendfile)
- ``fastsock-copy`` the same with ``--no-sendfile`` (pread + send through one buffer)
- ``nginx``         one worker, ``sendfile on``, a generated config (bench/http/nginx.py); skipped
                    with a message when nginx is not installed

Clients: on TCP wrk (the reference everyone knows; falls back to http_load without it), on UNIX
bench/http/http_load.c (wrk cannot speak UNIX sockets). ``--cross-check`` also runs http_load on
TCP.
Every server is first verified: each file fetched with every body checksummed. During the runs
http_load checks every status and Content-Length and checksums bodies (all of them for small
files; a sample for large ones, so hashing does not make the client the bottleneck).

Interleaving (shared/benchmarking.md): for each repeat, size and transport the servers run one
after another, in an order rotated every repeat; ratios are taken per repeat (pairs that ran
seconds apart); each is a finding with a 95% CI and a verdict (fastsock.report.http.findings,
stored in http.json's ``findings``). Server and client CPU times
are recorded; a run whose client used >= 90% of a core is flagged client-bound -- then it
measured the client, and a ratio against it says little.

Targets from the issue, printed with the ratios: large files (>= 16 MiB) >= 0.95x nginx MB/s,
1 KiB files >= 0.5x nginx req/s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import psutil

from bench.http.clients import (
    HTTP_LOAD,
    build_http_load,
    file_checksum,
    run_http_load,
    run_wrk,
    wrk_available,
    wrk_warmup,
)
from bench.http.nginx import Nginx, NginxError, nginx_binary
from fastsock import metadata, units
from fastsock.address import Endpoint, tcp_endpoint, unix_endpoint
from fastsock.findings import ratio_text
from fastsock.process import ServerProcess
from fastsock.report.http import finding_id, met
from fastsock.report.http import findings as http_findings
from fastsock.report.summary import spread_record as spread

SCHEMA = "fastsock.http_bench/1"
PROFILES = {
    # Each ratio is a finding with a 95% CI of its paired repeats (fastsock.report.http), so
    # the profiles buy repeats rather than long runs (issue 22).
    # short: a slice for a quick look (~40 s): enough for the two targets, not for the tails.
    "short": {"sizes": "1K,16M", "repeats": 6, "duration": 0.3, "warmup": 0.1},
    "quick": {"sizes": "1K,16M", "repeats": 10, "duration": 0.6, "warmup": 0.2},
    # full: 7 sizes x 3 servers x 2 transports x 8 repeats at 0.6 s (~20 minutes).
    "full": {
        "sizes": "1K,4K,64K,1M,16M,64M,256M",
        "repeats": 8,
        "duration": 0.6,
        "warmup": 0.2,
    },
}
SERVERS = ("fastsock", "fastsock-copy", "nginx")
TRANSPORTS = ("tcp", "unix")
CLIENT_BOUND = 0.9  # client CPU seconds per second: one core busy
LARGE = 16 << 20
TARGETS = {("large", "mb_per_s"): 0.95, ("1K", "req_per_s"): 0.5}
# Bodies of files this large are checksummed one in VERIFY_EVERY_LARGE per connection (always
# the first): hashing every byte at GB/s would make the client the bottleneck. Smaller ones:
# every body.
VERIFY_LARGE = 1 << 20
VERIFY_EVERY_LARGE = 8


def parse_size(text: str) -> int:
    try:
        return units.parse_size(text)
    except units.SizeError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def size_label(size: int) -> str:
    for unit, factor in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def make_files(directory: Path, sizes: list[int]) -> dict[int, Path]:
    """Random files ``<label>.bin``; a file of the right size from an earlier run is reused."""
    files = {}
    for size in sizes:
        path = directory / f"{size_label(size)}.bin"
        if not (path.exists() and path.stat().st_size == size):
            with open(path, "wb") as f:
                left = size
                while left:
                    chunk = os.urandom(min(left, 4 << 20))
                    f.write(chunk)
                    left -= len(chunk)
        files[size] = path
    return files


# -- servers ----------------------------------------------------------------------------------
class Servers:
    """Every server the run compares, by (server, transport) -> endpoint and PID."""

    def __init__(self) -> None:
        self.endpoints: dict[tuple[str, str], Endpoint] = {}
        self.pids: dict[str, int] = {}
        self.skipped: list[str] = []


@contextlib.contextmanager
def start_servers(
    root: Path,
    names: list[str],
    transports: list[str],
    tmp: Path,
    cpus: set[int] | None,
    sndbuf: int = 0,
) -> Iterator[Servers]:
    servers = Servers()
    with contextlib.ExitStack() as stack:
        for name in names:
            if name == "nginx":
                if nginx_binary() is None:
                    servers.skipped.append(
                        "nginx: not installed (apt-get install nginx); fastsock-only results"
                    )
                    continue
                try:
                    nginx = stack.enter_context(Nginx(str(root), sndbuf=sndbuf))
                except NginxError as err:
                    servers.skipped.append(f"nginx: {err}")
                    continue
                if cpus:
                    os.sched_setaffinity(nginx.pid, cpus)
                servers.pids["nginx"] = nginx.pid
                servers.endpoints[("nginx", "tcp")] = tcp_endpoint("127.0.0.1", nginx.port)
                servers.endpoints[("nginx", "unix")] = unix_endpoint(nginx.unix_path)
                continue
            extra = ["--no-sendfile"] if name == "fastsock-copy" else []
            if sndbuf:
                extra += ["--sndbuf", str(sndbuf)]
            for transport in transports:
                where = (
                    ["--port", "0"] if transport == "tcp" else ["--unix", str(tmp / f"{name}.sock")]
                )
                argv = [sys.executable, "-m", "fastsock", "serve", *where, "--mode", "http"]
                proc = stack.enter_context(
                    ServerProcess([*argv, "--root", str(root), *extra], cpu_affinity=cpus)
                )
                servers.endpoints[(name, transport)] = proc.endpoint
                servers.pids[f"{name}/{transport}"] = proc.pid
        yield servers


def server_pid(servers: Servers, name: str, transport: str) -> int:
    return servers.pids.get(name) or servers.pids[f"{name}/{transport}"]


# -- one measurement --------------------------------------------------------------------------
def measure(
    servers: Servers,
    name: str,
    transport: str,
    size: int,
    path: Path,
    checksum: str,
    args: argparse.Namespace,
    client_preexec: Callable[[], None] | None,
    client: str,
) -> dict:
    endpoint = servers.endpoints[(name, transport)]
    proc = psutil.Process(server_pid(servers, name, transport))
    url_path = "/" + path.name

    def cpu() -> float:
        times = proc.cpu_times()
        return times.user + times.system

    # The server's CPU time over the measured window only: sampled when the client's warm-up
    # ends (http_load warms up in-process, so a timer samples it then).
    samples: list[float] = []
    if client == "wrk":
        if args.warmup > 0:
            wrk_warmup(endpoint, url_path, conns=args.conns, seconds=args.warmup)
        samples.append(cpu())
        result = run_wrk(
            endpoint,
            url_path,
            conns=args.conns,
            duration=args.duration,
            length=size,
            preexec=client_preexec,
        )
    else:
        timer = threading.Timer(args.warmup, lambda: samples.append(cpu()))
        timer.start()
        result = run_http_load(
            endpoint,
            url_path,
            conns=args.conns,
            duration=args.duration,
            warmup=args.warmup,
            length=size,
            checksum=checksum,
            verify_every=verify_every(size),
            preexec=client_preexec,
        )
        timer.cancel()
    server_cpu = cpu() - samples[0] if samples else 0.0
    row = {"server": name, "transport": transport, "size": size, **asdict(result)}
    row["client_cpu_share"] = round(result.cpu_share, 3)
    row["client_bound"] = result.cpu_share >= CLIENT_BOUND
    row["server_cpu_s"] = round(server_cpu, 4)
    return row


def verify_every(size: int) -> int:
    return VERIFY_EVERY_LARGE if size >= VERIFY_LARGE else 1


def verify_servers(
    servers: Servers, files: dict[int, Path], checksums: dict[int, str]
) -> list[str]:
    """Fetch every file from every server with every body checksummed; problems found."""
    problems = []
    for (name, transport), endpoint in sorted(servers.endpoints.items()):
        for size, path in files.items():
            result = run_http_load(
                endpoint,
                "/" + path.name,
                conns=1,
                # Long enough for one whole checksummed body (a 256 MiB one takes ~0.2 s at
                # the C client's hashing speed; 200 MB/s leaves room for a slow machine).
                duration=0.05 + size / 200e6,
                warmup=0,
                length=size,
                checksum=checksums[size],
            )
            if result.errors or result.verified == 0:
                problems.append(
                    f"{name}/{transport} {size_label(size)}: errors={result.errors} "
                    f"verified={result.verified} {result.note}"
                )
    return problems


# -- summaries --------------------------------------------------------------------------------
def summarize(runs: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault((run["server"], run["transport"], run["size"], run["client"]), []).append(
            run
        )
    out = []
    for (server, transport, size, client), rows in sorted(groups.items()):
        requests = sum(r["req_per_s"] * r["seconds"] for r in rows)
        out.append(
            {
                "server": server,
                "transport": transport,
                "size": size,
                "client": client,
                "req_per_s": spread([r["req_per_s"] for r in rows]),
                "mb_per_s": spread([r["mb_per_s"] for r in rows]),
                "errors": sum(r["errors"] for r in rows),
                "client_bound_runs": sum(r["client_bound"] for r in rows),
                "server_cpu_us_per_req": (
                    round(sum(r["server_cpu_s"] for r in rows) / requests * 1e6, 2)
                    if requests
                    else None
                ),
            }
        )
    return out


def target_for(size: int, metric: str) -> float | None:
    if size >= LARGE:
        return TARGETS.get(("large", metric))
    if size == 1024:
        return TARGETS.get(("1K", metric))
    return None


def ratios(runs: list[dict]) -> list[dict]:
    """Per-repeat paired ratios: fastsock/nginx, fastsock-copy/nginx, fastsock-copy/fastsock."""
    index = {(r["repeat"], r["server"], r["transport"], r["size"], r["client"]): r for r in runs}
    pairs = [("fastsock", "nginx"), ("fastsock-copy", "nginx"), ("fastsock-copy", "fastsock")]
    keys = sorted({(r["transport"], r["size"], r["client"]) for r in runs})
    out = []
    for num, den in pairs:
        for transport, size, client in keys:
            for metric in ("req_per_s", "mb_per_s"):
                values, num_bound, den_bound = [], 0, 0
                for rep in sorted({r["repeat"] for r in runs}):
                    a = index.get((rep, num, transport, size, client))
                    b = index.get((rep, den, transport, size, client))
                    if a is None or b is None or b[metric] <= 0:
                        continue
                    values.append(a[metric] / b[metric])
                    num_bound += a["client_bound"]
                    den_bound += b["client_bound"]
                if not values:
                    continue
                target = target_for(size, metric) if den == "nginx" else None
                row = {
                    "ratio": f"{num}/{den}",
                    "transport": transport,
                    "size": size,
                    "client": client,
                    "metric": metric,
                    **spread(values),
                    # Where the client set the pace the ratio is squeezed towards 1: with the
                    # denominator client-bound it is an upper bound, with the numerator a lower.
                    "client_bound": {num: num_bound, den: den_bound},
                    "target": target,
                    "meets_target": None if target is None else statistics.median(values) >= target,
                }
                out.append(row)
    return out


def print_report(
    summary: list[dict], ratio_rows: list[dict], notes: list[str], found: list[dict]
) -> None:
    print(f"\n{'server':14} {'tr':4} {'size':>5} {'client':9} {'req/s':>10} {'MB/s':>9}  cpu/req")
    for row in summary:
        flag = " client-bound" if row["client_bound_runs"] else ""
        errors = f" errors={row['errors']}" if row["errors"] else ""
        print(
            f"{row['server']:14} {row['transport']:4} {size_label(row['size']):>5} "
            f"{row['client']:9} {row['req_per_s']['median']:10.0f} "
            f"{row['mb_per_s']['median']:9.1f}  {row['server_cpu_us_per_req'] or 0:.1f}us"
            f"{flag}{errors}"
        )
    print("\nratios (geometric mean of per-repeat ratios, 95% CI, verdict):")
    by_id = {f["id"]: f for f in found}
    for r in ratio_rows:
        if (r["metric"] == "mb_per_s") != (r["size"] >= 1 << 20):
            continue  # req/s for small files, MB/s for large ones
        f = by_id[finding_id(r)]
        target = ""
        if r["target"] is not None:
            target = f"  target >= {r['target']}: {met(f, r['target']).strip('*')}"
        bound = "".join(
            f" [{side} client-bound in {n} of {r['n']}: ratio is {kind}]"
            for (side, n), kind in zip(
                r["client_bound"].items(), ("a floor", "a ceiling"), strict=True
            )
            if n
        )
        print(
            f"  {r['ratio']:24} {r['transport']:4} {size_label(r['size']):>5} {r['client']:9} "
            f"{r['metric']:9} {ratio_text(f)} {f['verdict']}{target}{bound}"
        )
    for note in notes:
        print(f"note: {note}")


# -- the run ----------------------------------------------------------------------------------
def placement(args: argparse.Namespace) -> tuple[set[int] | None, Callable[[], None] | None]:
    """(server CPUs, client pre-exec) for --placement none|same|cross."""
    if args.placement == "none":
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    server = {cpus[0]}
    client = {cpus[0]} if args.placement == "same" or len(cpus) < 2 else {cpus[1]}

    def pin() -> None:
        os.sched_setaffinity(0, client)

    return server, pin


def run(args: argparse.Namespace) -> dict:
    started = time.monotonic()
    notes: list[str] = []
    reason = build_http_load()
    if reason:
        raise SystemExit(f"http_bench: {reason}")
    tcp_client = "wrk" if wrk_available() and not args.no_wrk else "http_load"
    if tcp_client != "wrk" and not args.no_wrk:
        notes.append("wrk is not installed (apt-get install wrk): http_load measures TCP too")
    server_cpus, client_preexec = placement(args)
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    files_dir = Path(args.files_dir) if args.files_dir else None
    with tempfile.TemporaryDirectory(prefix="fastsock-http-") as tmp_name:
        tmp = Path(tmp_name)
        root = files_dir or tmp / "www"
        root.mkdir(parents=True, exist_ok=True)
        files = make_files(root, sizes)
        checksums = {size: file_checksum(path) for size, path in files.items()}
        with start_servers(
            root, args.servers, args.transports, tmp, server_cpus, args.sndbuf
        ) as servers:
            notes.extend(servers.skipped)
            problems = verify_servers(servers, files, checksums)
            if problems:
                raise SystemExit("http_bench: verification failed: " + "; ".join(problems))
            names = [n for n in args.servers if any(k[0] == n for k in servers.endpoints)]
            runs = measure_all(servers, names, files, checksums, args, tcp_client, client_preexec)
    summary = summarize(runs)
    ratio_rows = ratios(runs)
    if args.sndbuf and "nginx" in args.servers and "unix" in args.transports:
        notes.append(
            "--sndbuf: nginx sets it on its listening sockets only, and accepted UNIX "
            "connections do not inherit it (ss -xm showed the kernel default, nginx 1.22): over "
            "UNIX only fastsock got the larger buffer"
        )
    if any(r["client_bound"] for r in runs):
        notes.append(
            "some runs were client-bound (client >= 90% of a core): there the client, not the "
            "server, set the pace, which squeezes ratios towards 1 (see the [...] marks)"
        )
    meta = metadata.for_bench()
    meta["duration_s"] = round(time.monotonic() - started, 1)
    return {
        "schema": SCHEMA,
        "metadata": meta,
        "parameters": {
            "profile": args.profile,
            "sizes": sizes,
            "servers": args.servers,
            "transports": args.transports,
            "repeats": args.repeats,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "conns": args.conns,
            "placement": args.placement,
            "sndbuf": args.sndbuf,
            "tcp_client": tcp_client,
            "cross_check": args.cross_check,
            "http_load": str(HTTP_LOAD),
        },
        "notes": notes,
        "runs": runs,
        "summary": summary,
        "ratios": ratio_rows,
        "findings": http_findings({"runs": runs, "ratios": ratio_rows}),
    }


def measure_all(
    servers: Servers,
    names: list[str],
    files: dict[int, Path],
    checksums: dict[int, str],
    args: argparse.Namespace,
    tcp_client: str,
    client_preexec: Callable[[], None] | None,
) -> list[dict]:
    runs = []
    cells = [(size, t) for size in files for t in args.transports]
    total = args.repeats * len(cells) * len(names)
    done = 0
    for repeat in range(args.repeats):
        # Rotate the order each repeat: no server always runs first (or right after another).
        order = names[repeat % len(names) :] + names[: repeat % len(names)]
        for size, transport in cells:
            clients = ["http_load"] if transport == "unix" else [tcp_client]
            if transport == "tcp" and args.cross_check and tcp_client != "http_load":
                clients.append("http_load")
            for name in order:
                for client in clients:
                    row = measure(
                        servers,
                        name,
                        transport,
                        size,
                        files[size],
                        checksums[size],
                        args,
                        client_preexec,
                        client,
                    )
                    row["repeat"] = repeat
                    runs.append(row)
                done += 1
                if not args.quiet:
                    print(
                        f"[{done}/{total}] r{repeat} {name:13} {transport:4} "
                        f"{size_label(size):>5}: {row['req_per_s']:9.0f} req/s "
                        f"{row['mb_per_s']:8.1f} MB/s"
                        + (" client-bound" if row["client_bound"] else "")
                        + (f" errors={row['errors']}" if row["errors"] else ""),
                        file=sys.stderr,
                        flush=True,
                    )
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.http", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--sizes", help="comma-separated file sizes, e.g. 1K,4K,16M")
    parser.add_argument("--repeats", type=int, help="interleaved repeats (>= 3 recommended)")
    parser.add_argument("--duration", type=float, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, help="seconds run first and discarded")
    parser.add_argument("--conns", type=int, default=8, help="client connections")
    parser.add_argument(
        "--servers", default=",".join(SERVERS), help="subset of " + ",".join(SERVERS)
    )
    parser.add_argument("--transports", default="tcp,unix", help="tcp, unix or both")
    parser.add_argument(
        "--placement",
        choices=("none", "same", "cross"),
        default="none",
        help="CPU pinning: none; same (server and client on one CPU); cross (one each)",
    )
    parser.add_argument(
        "--sndbuf",
        type=parse_size,
        default=0,
        help="SO_SNDBUF for every server's connections, nginx included (0: kernel default)",
    )
    parser.add_argument("--cross-check", action="store_true", help="http_load on TCP too")
    parser.add_argument("--no-wrk", action="store_true", help="http_load on TCP instead of wrk")
    parser.add_argument("--files-dir", help="keep the test files here (reused across runs)")
    parser.add_argument("--out", required=True, help="JSON results file")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    for key in ("sizes", "repeats", "duration", "warmup"):
        if getattr(args, key) is None:
            setattr(args, key, profile[key])
    args.servers = [s for s in args.servers.split(",") if s]
    args.transports = [t for t in args.transports.split(",") if t]
    bad = [s for s in args.servers if s not in SERVERS] + [
        t for t in args.transports if t not in TRANSPORTS
    ]
    if bad or args.repeats < 1 or args.duration <= 0 or args.conns < 1:
        parser.error(f"bad choice(s): {', '.join(bad) or 'repeats/duration/conns'}")
    try:
        for s in args.sizes.split(","):
            parse_size(s)
    except argparse.ArgumentTypeError as err:
        parser.error(str(err))
    result = run(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print_report(result["summary"], result["ratios"], result["notes"], result["findings"])
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
