"""User-space instructions per echoed message, counted by callgrind (not timed: repeatable).

    python -m bench.studies.instructions [--servers fastsock,bare-epoll] [--transport unix]
                                 [--size 64] [--depth 1] [--short 1] [--long 3]

A server runs under ``valgrind --tool=callgrind`` while the C load client echoes through it for
``--short`` seconds; then a fresh one for ``--long`` seconds. Instructions per message is the
slope between the two runs, (Ir_long - Ir_short) / (messages_long - messages_short), so start-up
and shutdown (the interpreter, imports, binding, the warm-up of ``bench.peers.warm``) cancel
out. Callgrind counts instructions, not time: the same binary and input give the same count
whatever else the machine does, which makes it the profile to compare code changes by on a
shared 2-core machine. Kernel work (the syscalls themselves, 80-89% of a 64 B echo's CPU) is
not counted: this is the Python server's own share.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.peers.registry import LOAD_CLIENT, PEERS, build_c_peers, peer_env
from bench.peers.warm import warm_up
from bench.studies.common import load_client_argv, study_endpoint
from fastsock.process import ServerProcess

CONNS = 32


def count(name: str, args: argparse.Namespace, seconds: float, tmp: Path) -> tuple[int, int]:
    """(instructions, messages) of one server run under callgrind for ``seconds`` of load."""
    out = tmp / f"{name}-{seconds}.cg"
    where = study_endpoint(args.transport, str(tmp), f"{name}.sock")
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no"]
    env = peer_env()
    env["PYTHONHASHSEED"] = "0"
    with ServerProcess([*argv, *PEERS[name].argv(where)], env=env, ready_timeout=120) as server:
        # As every other harness does (bench.peers.warm): a fresh asyncio server reads through
        # glibc's mmap path until its first connection closes. Both runs warm up alike, so the
        # warm-up's own instructions cancel in the slope.
        warm_up(server.endpoint, timeout=120)
        client = load_client_argv(
            server.endpoint, size=args.size, conns=CONNS, depth=args.depth,
            duration=seconds, warmup=0,
        )  # fmt: skip
        proc = subprocess.run(client, capture_output=True, text=True, timeout=seconds + 60)
        if proc.returncode != 0:
            raise RuntimeError(f"load_client: {proc.stderr.strip()}")
        messages = json.loads(proc.stdout)["total_messages"]
        if server.stop(timeout=120) != 0:
            raise RuntimeError(f"{name} did not exit 0 under callgrind: {server.stderr_text}")
    match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
    if not match:
        raise RuntimeError(f"no totals in {out}")
    return int(match.group(1)), messages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="fastsock,bare-epoll")
    parser.add_argument("--transport", choices=["unix", "tcp"], default="unix")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--short", type=float, default=1.0)
    parser.add_argument("--long", type=float, default=3.0)
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("instructions: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    if not LOAD_CLIENT.exists() and build_c_peers().get("load_client") is not None:
        print("instructions: the C load client could not be built", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="fastsock-cg-") as tmpdir:
        tmp = Path(tmpdir)
        for name in args.servers.split(","):
            ir1, m1 = count(name, args, args.short, tmp)
            ir2, m2 = count(name, args, args.long, tmp)
            per = (ir2 - ir1) / (m2 - m1) if m2 > m1 else float("nan")
            print(
                f"{name:12} {args.transport} {args.size} B depth {args.depth}: "
                f"{per:,.0f} instructions/message ({m1:,} and {m2:,} messages)",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
