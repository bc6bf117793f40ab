"""How far apart an io_uring server's read and its echo are: the batching behind the io_uring
engine's result at UNIX 1 MiB (issue #12, docs/engines.md "The io_uring engine").

    python -m bench.studies.uring_batches [--servers fastsock-uring,c-uring] [--conns 2,8,32]
                                          [--size 1M] [--transport unix] [--seconds 2]
                                          [--repeat 3] [--out results/uring_batches.json]

Each server echoes for the C load client (depth 1) while ``perf record`` takes three
tracepoints of that server: ``io_uring:io_uring_complete`` (every completion: its user_data and
result), ``io_uring:io_uring_submit_req`` (every submitted request) and
``syscalls:sys_enter_io_uring_enter``. From the trace, per connection count:

- RECV completions per echoed message and their mean size;
- echo SENDs submitted per ``io_uring_enter``;
- the *distance*: the bytes RECVs received (this one included) from a RECV's completion until
  the SEND that echoes it is submitted. A completion-based server reads a batch of connections
  and sends the batch back at the next ``io_uring_enter``, so everything received in between
  passes through the cache first; the epoll engine sends each read back at once (distance:
  the read itself).

Needs ``perf`` (Debian: ``apt-get install linux-perf``) and the right to trace (root, or
``kernel.perf_event_paranoid`` <= -1). Counts, not times: the figures do not depend on how busy
the machine is as much as timings do, but they do depend on timing (how many connections' data
arrive while the server is busy), so run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.peers.registry import PEERS, available_peers, peer_env
from bench.peers.warm import warm_up
from bench.studies.common import load_client_argv, study_endpoint, write_study
from fastsock.process import ServerProcess
from fastsock.units import parse_size
from fastsock.uring.connection import OP_CHAIN_SEND, SLOT_MASK

TRACEPOINTS = (
    "io_uring:io_uring_complete",
    "io_uring:io_uring_submit_req",
    "syscalls:sys_enter_io_uring_enter",
)
# perf script's line for a tracepoint: "... 31442.538174: io_uring:io_uring_complete: ring ...,
# req ..., user_data 0x5, result 219264, cflags 0x0 ..."
_EVENT = re.compile(r"\s(io_uring:io_uring_\w+|syscalls:sys_enter_io_uring_enter):(.*)$")
_USER_DATA = re.compile(r"user_data (0x[0-9a-f]+)")
_RESULT = re.compile(r"result (-?\d+)")


@dataclass(frozen=True)
class Event:
    kind: str  # "complete", "submit" or "enter"
    user_data: int = 0
    result: int = 0


def parse_trace(lines: Iterable[str]) -> list[Event]:
    """The events of ``perf script`` output, in order; other lines are skipped."""
    events: list[Event] = []
    for line in lines:
        m = _EVENT.search(line)
        if m is None:
            continue
        name, rest = m.groups()
        if name == "syscalls:sys_enter_io_uring_enter":
            events.append(Event("enter"))
            continue
        ud = _USER_DATA.search(rest)
        if ud is None:
            continue
        if name == "io_uring:io_uring_complete":
            res = _RESULT.search(rest)
            events.append(Event("complete", int(ud.group(1), 16), int(res.group(1)) if res else 0))
        elif name == "io_uring:io_uring_submit_req":
            events.append(Event("submit", int(ud.group(1), 16)))
    return events


# What a user_data means, per server: ("recv" | "send" | None, the connection it belongs to).
Decoder = Callable[[int], tuple[str | None, int]]


def fastsock_op(user_data: int) -> tuple[str | None, int]:
    """fastsock.uring: a RECV's user_data is its slot; the linked echo SEND's OP_CHAIN_SEND|slot."""
    if 0 < user_data <= SLOT_MASK:
        return "recv", user_data
    if user_data & ~SLOT_MASK == OP_CHAIN_SEND:
        return "send", user_data & SLOT_MASK
    return None, 0


def c_uring_op(user_data: int) -> tuple[str | None, int]:
    """bench/peers/c/uring_echo_server.c: kind << 56 | generation << 32 | fd, K_RECV 0, K_SEND 1."""
    kind, conn = user_data >> 56, user_data & ((1 << 56) - 1)
    return {0: "recv", 1: "send"}.get(kind), conn


DECODERS: dict[str, Decoder] = {"fastsock-uring": fastsock_op, "c-uring": c_uring_op}


def summarise(events: list[Event], decode: Decoder, messages: int) -> dict:
    """RECVs per message, mean RECV size, SENDs per enter, and the distance (see the module
    docstring) as median and p90 in bytes, over the RECVs whose echo was submitted in the trace."""
    received = 0  # bytes received by all RECVs so far
    marks: dict[int, int] = {}  # connection -> `received` before its last RECV
    distances: list[int] = []
    recvs = sends = enters = 0
    for ev in events:
        if ev.kind == "enter":
            enters += 1
            continue
        op, conn = decode(ev.user_data)
        if ev.kind == "complete" and op == "recv" and ev.result > 0:
            recvs += 1
            marks[conn] = received
            received += ev.result
        elif ev.kind == "submit" and op == "send":
            sends += 1
            if conn in marks:
                distances.append(received - marks.pop(conn))
    distances.sort()
    return {
        "messages": messages,
        "recvs": recvs,
        "recvs_per_message": round(recvs / messages, 2) if messages else None,
        "mean_recv_bytes": round(received / recvs) if recvs else None,
        "sends_per_enter": round(sends / enters, 1) if enters else None,
        "distance_median_bytes": statistics.median(distances) if distances else None,
        "distance_p90_bytes": distances[int(len(distances) * 0.9)] if distances else None,
        "distances": len(distances),
    }


def trace_run(name: str, conns: int, args: argparse.Namespace, tmp: str) -> dict:
    """One server, one connection count: the load client runs while perf traces the server."""
    data = Path(tmp) / f"{name}-{conns}.data"
    endpoint = study_endpoint(args.transport, tmp, f"{name}.sock")
    with ServerProcess(PEERS[name].argv(endpoint), env=peer_env(), cpu_affinity={0}) as server:
        warm_up(server.endpoint)
        client = load_client_argv(
            server.endpoint, size=args.size, conns=conns, depth=1,
            duration=args.seconds, warmup=0,
        )  # fmt: skip
        perf = subprocess.Popen(
            ["perf", "record", "-q", "-o", str(data), "-p", str(server.pid)]
            + [arg for tp in TRACEPOINTS for arg in ("-e", tp)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            time.sleep(0.5)  # perf attaches to the server
            run = subprocess.run(
                client,
                capture_output=True,
                text=True,
                timeout=args.seconds + 30,
                preexec_fn=lambda: os.sched_setaffinity(0, {1}),
            )
        finally:
            perf.send_signal(signal.SIGINT)
            _, perf_err = perf.communicate(timeout=60)
        if run.returncode != 0:
            raise RuntimeError(f"load_client: {run.stderr.strip()}")
        # perf record stops on SIGINT; it exits 0, or dies of the signal if it was still starting.
        if perf.returncode not in (0, -signal.SIGINT) or not data.exists():
            why = perf_err.decode(errors="replace").strip() or f"exit {perf.returncode}"
            raise RuntimeError(f"perf record failed: {why}")
    script = subprocess.run(
        ["perf", "script", "-i", str(data)], capture_output=True, text=True, timeout=300
    )
    messages = json.loads(run.stdout)["total_messages"]
    return {"server": name, "conns": conns, **summarise(
        parse_trace(script.stdout.splitlines()), DECODERS[name], messages
    )}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="fastsock-uring,c-uring")
    parser.add_argument("--conns", default="2,8,32", help="connection counts, comma-separated")
    parser.add_argument("--size", type=parse_size, default=parse_size("1M"))
    parser.add_argument("--transport", choices=["unix", "tcp"], default="unix")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument(
        "--repeat", type=int, default=3,
        help="runs per server and connection count, alternating the servers' order "
        "(the batching differs from run to run)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    servers = args.servers.split(",")
    unknown = [s for s in servers if s not in DECODERS]
    if unknown:
        parser.error(f"--servers: no decoder for {', '.join(unknown)} (have {', '.join(DECODERS)})")
    if shutil.which("perf") is None:
        print("uring_batches: perf is not installed (apt-get install linux-perf)", file=sys.stderr)
        return 2
    status = available_peers()
    for name in servers:
        if status[name] is not None:
            print(f"uring_batches: {name} is unavailable: {status[name]}", file=sys.stderr)
            return 2
    results = []
    header = "server          conns  RECVs/msg  mean RECV  SENDs/enter  distance median  p90"
    print(header, flush=True)
    with tempfile.TemporaryDirectory(prefix="fastsock-batches-") as tmp:
        for conns in (int(c) for c in args.conns.split(",")):
            for repeat in range(args.repeat):
                for name in servers if repeat % 2 == 0 else servers[::-1]:
                    r = {**trace_run(name, conns, args, tmp), "repeat": repeat}
                    results.append(r)
                    kib = lambda v: "–" if v is None else f"{v / 1024:,.0f} KiB"  # noqa: E731
                    print(
                        f"{name:15} {conns:5}  {r['recvs_per_message']:9}"
                        f"  {kib(r['mean_recv_bytes']):>9}  {r['sends_per_enter']:11}"
                        f"  {kib(r['distance_median_bytes']):>15}  {kib(r['distance_p90_bytes'])}",
                        flush=True,
                    )
    if args.out:
        write_study(args, "fastsock.uring_batches/1", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
