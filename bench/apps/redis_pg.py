"""The Redis and PostgreSQL parts of the run: one server each, every case over UNIX and TCP,
interleaved (the transport order alternates every repeat)."""

from __future__ import annotations

from collections.abc import Callable

import psutil

from bench.apps.clients import CLIENT_BOUND, redis_target, run_pgbench, run_redis_benchmark
from bench.apps.servers import PostgresCluster, RedisServer, redis_binaries

Log = Callable[[str], None]


def order(repeat: int, transports: tuple[str, ...] = ("unix", "tcp")) -> tuple[str, ...]:
    """A B, then B A: neither transport always runs first."""
    shift = repeat % len(transports)
    return transports[shift:] + transports[:shift]


LATENCY_KEYS = ("avg_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms")


def redis_rows(
    res: dict,
    app: str,
    case: str,
    transport: str,
    repeat: int,
    params: dict,
    **extra: object,
) -> list[dict]:
    """One row per test of a redis-benchmark run (``res``); ``case`` may name ``{test}``."""
    return [
        _row(
            app,
            case.format(test=test),
            {"test": test, **params},
            transport,
            repeat,
            m["req_per_s"],
            "req_per_s",
            {k: m[k] for k in LATENCY_KEYS},
            res["client_cpu_s"],
            res["wall_s"],
            **extra,
        )
        for test, m in res["tests"].items()
    ]


def _row(
    app: str,
    case: str,
    params: dict,
    transport: str,
    repeat: int,
    value: float,
    metric: str,
    latency: dict,
    client_cpu_s: float,
    wall_s: float,
    **extra: object,
) -> dict:
    share = client_cpu_s / wall_s if wall_s > 0 else 0.0
    return {
        "app": app,
        "case": case,
        "params": params,
        "transport": transport,
        "repeat": repeat,
        "metric": metric,
        "value": value,
        "latency_ms": latency,
        "client_cpu_share": round(share, 3),
        "client_bound": share >= CLIENT_BOUND,
        **extra,
    }


def redis_cases(cfg: dict) -> list[tuple[int, int]]:
    return [(size, p) for size in cfg["sizes"] for p in cfg["pipelines"]]


def run_redis(cfg: dict, repeats: int, log: Log) -> list[dict]:
    _, bench = redis_binaries() or ("", "")
    rows: list[dict] = []
    with RedisServer() as server:
        proc = psutil.Process(server.pid)
        targets = {
            "unix": redis_target(server.unix_path),
            "tcp": redis_target(None, "127.0.0.1", server.port),
        }
        for t in order(0):  # warm-up, discarded: connections, allocator, page cache
            run_redis_benchmark(
                bench, targets[t], tests=cfg["tests"], size=64, clients=8, pipeline=1, requests=2000
            )
        for repeat in range(repeats):
            for size, pipeline in redis_cases(cfg):
                requests = int(cfg["requests"][str(pipeline)])
                for transport in order(repeat):
                    before = sum(proc.cpu_times()[:2])
                    res = run_redis_benchmark(
                        bench,
                        targets[transport],
                        tests=cfg["tests"],
                        size=size,
                        clients=cfg["clients"],
                        pipeline=pipeline,
                        requests=requests,
                    )
                    server_cpu = sum(proc.cpu_times()[:2]) - before
                    rows += redis_rows(
                        res,
                        "redis",
                        f"{{test}} {size} B P{pipeline}",
                        transport,
                        repeat,
                        {
                            "size": size,
                            "pipeline": pipeline,
                            "clients": cfg["clients"],
                            "requests": requests,
                        },  # fmt: skip
                        server_cpu_s=round(server_cpu, 4),
                    )
                    log(
                        f"r{repeat} redis {size}B P{pipeline} {transport:4}: "
                        + " ".join(f"{t}={m['req_per_s']:.0f}/s" for t, m in res["tests"].items())
                    )
    return rows


def run_postgres(cfg: dict, repeats: int, log: Log) -> list[dict]:
    rows: list[dict] = []
    with PostgresCluster(scale=cfg["scale"]) as pg:
        hosts = {"unix": pg.sockdir, "tcp": "127.0.0.1"}

        def bench(transport: str, script: str, seconds: int, transactions: int) -> dict:
            return run_pgbench(
                pg.pgbench_argv(hosts[transport]),
                script=script,
                clients=cfg["clients"],
                threads=cfg["threads"],
                seconds=seconds,
                transactions=transactions,
            )

        for t in order(0):  # warm-up, discarded: shared buffers, catalog caches
            bench(t, "select-only", 0, 50)
        for repeat in range(repeats):
            for script in cfg["scripts"]:
                for transport in order(repeat):
                    res = bench(transport, script, cfg["seconds"], cfg["transactions"])
                    params = {
                        "script": script,
                        "clients": cfg["clients"],
                        "threads": cfg["threads"],
                        "scale": cfg["scale"],
                        "seconds": cfg["seconds"],
                        "transactions": cfg["transactions"],
                    }
                    latency = {"avg_ms": res["latency_avg_ms"]}
                    rows.append(
                        _row(
                            "postgres",
                            script,
                            params,
                            transport,
                            repeat,
                            res["tps"],
                            "tps",
                            latency,
                            res["client_cpu_s"],
                            res["wall_s"],
                            errors=int(res["failed"]),
                            connect_ms=res.get("connect_ms"),
                        )
                    )
                    log(f"r{repeat} postgres {script:11} {transport:4}: {res['tps']:.0f} tps")
    return rows
