"""What the studies share: where a study's server listens, the C load client's command line,
and how a study's JSON is written."""

from __future__ import annotations

import argparse
import json
import os

from bench.peers.registry import LOAD_CLIENT
from fastsock import metadata
from fastsock.address import Endpoint, tcp_endpoint, unix_endpoint


def study_endpoint(transport: str, tmp: str, name: str = "echo.sock") -> Endpoint:
    """Where a study's server listens: ``tmp/name`` over UNIX, a free loopback port over TCP."""
    if transport == "unix":
        return unix_endpoint(os.path.join(tmp, name))
    return tcp_endpoint("127.0.0.1", 0)


def load_client_argv(
    endpoint: Endpoint, *, size: int, conns: int, depth: int, duration: float, warmup: float
) -> list[str]:
    """The C load client (``bench/peers/c/load_client.c``) echoing through ``endpoint``."""
    where = ["--unix", endpoint.path] if endpoint.is_unix else ["--port", str(endpoint.port)]
    return [
        str(LOAD_CLIENT), *where, "--size", str(size), "--conns", str(conns),
        "--depth", str(depth), "--duration", str(duration), "--warmup", str(warmup),
    ]  # fmt: skip


def print_plan(study: str, args: argparse.Namespace, server: str, extra: str) -> None:
    """The line a study prints before it starts: the server, the load and how long."""
    print(
        f"{study}: {server} server, {args.size} B x {args.conns} conns, "
        f"{args.duration:g} s (+{args.warmup:g} s warm-up) x {args.repeats} repeats, {extra}",
        flush=True,
    )


def write_study(args: argparse.Namespace, schema: str, results: list[dict]) -> None:
    """A study's JSON at ``args.out``: its schema, every option but ``--out``, the results and
    the machine's metadata."""
    out = {
        "schema": schema,
        "params": {k: v for k, v in vars(args).items() if k != "out"},
        "results": results,
        "metadata": metadata.for_load(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {args.out}")
