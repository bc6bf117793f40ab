"""bench/apps: parsers on saved tool output, paired ratios, the proxy config, and smoke runs of
each real server for a fraction of a second where its package is installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.apps import servers
from bench.apps.__main__ import load_matrix
from bench.apps.parsers import ParseError, parse_pgbench, parse_redis_csv
from bench.apps.proxy import render_proxy_config
from bench.apps.stats import paired_ratios, summarize
from bench.http.clients import wrk_available
from bench.http.nginx import nginx_binary

SAMPLES = Path(__file__).parent / "fixtures" / "apps"


def test_parse_redis_csv_reads_every_test_and_percentile():
    got = parse_redis_csv((SAMPLES / "redis_benchmark.csv").read_text())
    assert set(got) == {"SET", "GET"}
    assert got["SET"]["req_per_s"] == 317460.31
    assert got["GET"]["p50_ms"] == 1.719
    assert got["GET"]["p99_ms"] == 32.095
    assert got["GET"]["max_ms"] == 32.271


def test_parse_redis_csv_skips_progress_lines():
    text = (
        "SET: rps=1000.0 (overall: 900.0) avg_msec=0.1\r"
        + (SAMPLES / "redis_benchmark.csv").read_text()
    )
    assert parse_redis_csv(text)["SET"]["req_per_s"] == 317460.31


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Could not connect to Redis at 127.0.0.1:1: Connection refused\n",
        '"test","rps"\n"GET","1"\n',  # a header without the latency columns
        '"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",'
        '"p99_latency_ms","max_latency_ms"\n',  # no rows
    ],
)
def test_parse_redis_csv_rejects_what_it_does_not_know(text):
    with pytest.raises(ParseError):
        parse_redis_csv(text)


def test_parse_pgbench_select_only():
    got = parse_pgbench((SAMPLES / "pgbench_select_only.txt").read_text())
    assert got["tps"] == 4840.879243
    assert got["latency_avg_ms"] == 1.653
    assert got["transactions"] == 4261
    assert got["failed"] == 0
    assert got["connect_ms"] == 128.055
    assert got["transaction_type"] == "<builtin: select only>"


def test_parse_pgbench_tpcb_with_transaction_count():
    got = parse_pgbench((SAMPLES / "pgbench_tpcb.txt").read_text())
    assert got["tps"] == 517.126586
    assert got["transactions"] == 160
    assert got["clients"] == 8
    assert got["transaction_type"] == "<builtin: TPC-B (sort of)>"


def test_parse_pgbench_rejects_a_failed_run():
    with pytest.raises(ParseError):
        parse_pgbench('pgbench: error: connection to server failed: FATAL: role "x"\n')


def _row(transport, repeat, value, bound=False):
    return {"app": "redis", "case": "GET", "params": {}, "transport": transport,
            "repeat": repeat, "metric": "req_per_s", "value": value,
            "latency_ms": {"p50_ms": value / 1000}, "client_bound": bound}  # fmt: skip


def test_ratios_pair_unix_and_tcp_within_each_repeat():
    rows = [
        _row("unix", 0, 200),
        _row("tcp", 0, 100),
        _row("unix", 1, 90, bound=True),
        _row("tcp", 1, 100),
        _row("unix", 2, 150),
    ]  # fmt: skip  (repeat 2 has no TCP)
    (r,) = paired_ratios(rows)
    assert (r["n"], r["min"], r["max"], r["median"]) == (2, 0.9, 2.0, pytest.approx(1.45))
    assert r["client_bound"] == {"unix": 1, "tcp": 0}
    by_transport = {s["transport"]: s for s in summarize(rows)}
    assert by_transport["unix"]["value"]["median"] == 150
    assert by_transport["unix"]["client_bound_runs"] == 1


def test_proxy_config_keeps_upstream_connections_alive(tmp_path):
    text = render_proxy_config(
        str(tmp_path), {"unix": 1111, "tcp": 2222}, {"unix": "unix:/x.sock", "tcp": "127.0.0.1:3"}
    )
    assert "listen 127.0.0.1:1111;" in text and "server unix:/x.sock;" in text
    assert "listen 127.0.0.1:2222;" in text and "server 127.0.0.1:3;" in text
    assert text.count("keepalive 32;") == 2
    assert text.count('proxy_set_header Connection "";') == 2
    assert "master_process off;" in text and "worker_processes 1;" in text


def test_every_profile_names_known_apps_and_repeats():
    matrix = load_matrix()
    assert {"smoke", "quick", "full"} <= set(matrix)
    for name in ("quick", "full"):
        assert matrix[name]["repeats"] >= 3
        for pipeline in matrix[name]["redis"]["pipelines"]:
            assert str(pipeline) in matrix[name]["redis"]["requests"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "args", [["--profile", "nope", "--out", "x.json"], ["--apps", "mysql", "--out", "x.json"]]
)
def test_cli_rejects_bad_choices_with_one_line(args, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench.apps", *args],
        capture_output=True, text=True, timeout=20, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "unknown" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "x.json").exists()


# -- smoke runs: each app for a fraction of a second ---------------------------------------------
def _smoke(name: str) -> list[dict]:
    from bench.apps.__main__ import app_runners

    spec = load_matrix()["smoke"]
    rows = app_runners()[name](spec[name], 1, lambda line: None)
    assert {r["transport"] for r in rows} == {"unix", "tcp"}
    assert all(r["value"] > 0 for r in rows)
    return rows


@pytest.mark.skipif(
    servers.redis_binaries() is None, reason="redis-server/redis-tools not installed"
)
@pytest.mark.timeout(60)
def test_redis_smoke_runs_over_both_transports():
    rows = _smoke("redis")
    assert all(r["latency_ms"]["p50_ms"] > 0 for r in rows)


@pytest.mark.skipif(
    servers.pg_bindir() is None, reason="postgresql (initdb, pgbench) not installed"
)
@pytest.mark.timeout(120)
def test_postgres_smoke_runs_over_both_transports():
    rows = _smoke("postgres")
    assert all(r["errors"] == 0 for r in rows)


@pytest.mark.skipif(
    nginx_binary() is None or not wrk_available(), reason="nginx or wrk not installed"
)
@pytest.mark.timeout(120)
def test_proxy_smoke_runs_over_both_upstreams():
    rows = _smoke("proxy")
    assert all(r["errors"] == 0 for r in rows)


@pytest.mark.skipif(
    servers.redis_binaries() is None, reason="redis-server/redis-tools not installed"
)
@pytest.mark.timeout(60)
def test_redis_server_is_stopped_by_pid_even_when_the_body_fails():
    with pytest.raises(RuntimeError, match="boom"), servers.RedisServer() as redis:
        pid = redis.pid
        raise RuntimeError("boom")
    assert redis.proc.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not redis.workdir.exists()


@pytest.mark.skipif(
    servers.pg_bindir() is None, reason="postgresql (initdb, pgbench) not installed"
)
@pytest.mark.timeout(120)
def test_postgres_cluster_is_stopped_by_pid_and_its_dir_removed():
    with servers.PostgresCluster() as pg:
        pid, workdir = pg.pid, pg.workdir
        assert (workdir / "data" / "postmaster.pid").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not workdir.exists()
