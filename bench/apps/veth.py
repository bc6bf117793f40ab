"""The container path: TCP across a veth pair between two namespaces, beside TCP loopback and a
UNIX socket, for fastsock echo (the C load client) and for Redis (redis-benchmark).

The servers run inside the server namespace (bench/apps/netns.py), listening on 198.18.0.1 and
on a UNIX socket. The three paths differ only in where the client runs:

- ``unix``  the UNIX socket (a filesystem path: namespaces do not separate it)
- ``tcp``   198.18.0.1 from inside the server namespace: a local address, so the kernel routes
            it over that namespace's loopback device -- the loopback path, same server process
- ``veth``  198.18.0.1 from the client namespace: across the veth pair, what a container on a
            bridge network pays to reach a service on its host (minus the bridge itself)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

from bench.apps.clients import redis_target, run_redis_benchmark
from bench.apps.netns import SERVER_ADDR, NetnsError, VethPair, cleanup, veth_pair
from bench.apps.redis_pg import _row, order, redis_rows
from bench.apps.servers import AppError, RedisServer, redis_binaries
from bench.peers.registry import LOAD_CLIENT, build_c_peers
from fastsock.process import ServerProcess

PATHS = ("unix", "tcp", "veth")


def _client_ns(pair: VethPair, transport: str) -> tuple[str, ...]:
    if transport == "veth":
        return pair.exec_in(pair.client_ns)
    return pair.exec_in(pair.server_ns)


def _echo(pair: VethPair, where: list[str], transport: str, cfg: dict, pid: int) -> dict:
    argv = [
        *_client_ns(pair, transport),
        str(LOAD_CLIENT),
        *where,
        "--size",
        str(cfg["size"]),
        "--conns",
        str(cfg["conns"]),
        "--depth",
        "1",
        "--duration",
        str(cfg["duration"]),
        "--warmup",
        str(cfg["warmup"]),
    ]
    server = psutil.Process(pid)
    before = sum(server.cpu_times()[:2])
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=cfg["duration"] + cfg["warmup"] + 60
    )
    try:
        raw = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AppError(f"load_client over {transport}: {proc.stderr.strip()[-200:]}") from None
    if proc.returncode != 0 or raw.get("errors"):
        raise AppError(f"load_client over {transport}: {raw.get('errors')} errors")
    raw["server_cpu_s"] = sum(server.cpu_times()[:2]) - before
    return raw


def run_container(cfg: dict, repeats: int, log) -> list[dict]:
    reasons = build_c_peers()
    if reasons.get("load_client"):
        raise AppError(f"the C load client: {reasons['load_client']}")
    cleanup()  # leftovers of a run killed before its finally
    try:
        with veth_pair() as pair, tempfile.TemporaryDirectory(prefix="fastsock-veth-") as tmp:
            return _measure(pair, Path(tmp), cfg, repeats, log)
    except NetnsError as err:
        raise AppError(f"network namespaces: {err}") from None
    finally:
        cleanup()


def _measure(pair: VethPair, tmp: Path, cfg: dict, repeats: int, log) -> list[dict]:
    rows: list[dict] = []
    inside = list(pair.exec_in(pair.server_ns))
    serve = [*inside, sys.executable, "-m", "fastsock", "serve", "--mode", "echo"]
    have_redis = redis_binaries() is not None
    with (
        ServerProcess([*serve, "--unix", str(tmp / "echo.sock")]) as echo_unix,
        ServerProcess([*serve, "--host", SERVER_ADDR, "--port", "0"]) as echo_tcp,
    ):
        wheres = {
            "unix": ["--unix", str(tmp / "echo.sock")],
            "tcp": ["--host", SERVER_ADDR, "--port", str(echo_tcp.endpoint.port)],
            "veth": ["--host", SERVER_ADDR, "--port", str(echo_tcp.endpoint.port)],
        }
        pids = {"unix": echo_unix.pid, "tcp": echo_tcp.pid, "veth": echo_tcp.pid}
        redis = RedisServer(host=SERVER_ADDR, prefix=tuple(inside)) if have_redis else None
        try:
            for repeat in range(repeats):
                for transport in order(repeat, PATHS):
                    raw = _echo(pair, wheres[transport], transport, cfg, pids[transport])
                    wall = raw.get("elapsed_s") or cfg["duration"]
                    params = {"size": cfg["size"], "conns": cfg["conns"], "depth": 1, "client": "c"}
                    rows.append(
                        _row(
                            "container",
                            f"fastsock echo {cfg['size']} B",
                            params,
                            transport,
                            repeat,
                            raw["msgs_per_s"],
                            "msgs_per_s",
                            {},
                            raw["cpu_user_s"] + raw["cpu_sys_s"],
                            wall,
                            server_cpu_s=round(raw["server_cpu_s"], 4),
                        )
                    )
                    log(f"r{repeat} container echo {transport:4}: {raw['msgs_per_s']:.0f} msgs/s")
                if redis is not None:
                    rows += _redis_round(pair, redis, cfg, repeat, log)
        finally:
            if redis is not None:
                redis.stop()
    return rows


def _redis_round(pair: VethPair, redis: RedisServer, cfg: dict, repeat: int, log) -> list[dict]:
    rows = []
    _, bench = redis_binaries() or ("", "")
    for transport in order(repeat, PATHS):
        target = (
            redis_target(redis.unix_path)
            if transport == "unix"
            else redis_target(None, SERVER_ADDR, redis.port)
        )
        res = run_redis_benchmark(
            bench,
            target,
            tests=cfg["redis_tests"],
            size=cfg["size"],
            clients=cfg["redis_clients"],
            pipeline=1,
            requests=cfg["redis_requests"],
            prefix=_client_ns(pair, transport),
        )
        rows += redis_rows(
            res,
            "container",
            f"redis {{test}} {cfg['size']} B P1",
            transport,
            repeat,
            {
                "size": cfg["size"],
                "pipeline": 1,
                "clients": cfg["redis_clients"],
                "requests": cfg["redis_requests"],
            },  # fmt: skip
        )
        log(
            f"r{repeat} container redis {transport:4}: "
            + " ".join(f"{t}={m['req_per_s']:.0f}/s" for t, m in res["tests"].items())
        )
    return rows
