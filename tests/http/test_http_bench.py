"""The static-file benchmark's parts: the C client's verification, wrk parsing, nginx config,
ratios. No nginx or wrk needed (the nginx test runs only where it is installed)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from bench.http import run as http_bench
from bench.http.clients import (
    HTTP_LOAD,
    build_http_load,
    file_checksum,
    parse_wrk,
    run_http_load,
)
from bench.http.nginx import Nginx, nginx_binary, render_config
from tests.http.conftest import SIZES

needs_cc = pytest.mark.skipif(
    shutil.which("cc") is None and not HTTP_LOAD.exists(), reason="no C compiler for http_load"
)


@pytest.fixture(scope="module")
def http_load() -> str:
    reason = build_http_load()
    if reason:
        pytest.skip(reason)
    return str(HTTP_LOAD)


@needs_cc
@pytest.mark.timeout(120)
@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_http_load_verifies_bodies_against_the_file(site, http_serve, http_load, transport):
    server = http_serve(site, transport)
    for name in ("empty.bin", "one.bin", "64k1.bin", "1m7.bin"):
        size = SIZES[name]
        result = run_http_load(
            server.endpoint,
            f"/{name}",
            conns=2,
            duration=0.3,
            warmup=0.1,
            length=size,
            checksum=file_checksum(site / name),
            depth=2,  # pipelined
        )
        assert result.errors == 0, (name, result.note)
        assert result.req_per_s > 0 and result.verified > 0, name
        assert result.mb_per_s == pytest.approx(result.req_per_s * size / 1e6, rel=0.05, abs=1e-3)


@needs_cc
@pytest.mark.timeout(60)
def test_http_load_counts_wrong_bodies_lengths_and_statuses(site, http_serve, http_load):
    server = http_serve(site, "unix")
    common = {"conns": 1, "duration": 0.2, "warmup": 0.0}
    wrong_sum = run_http_load(
        server.endpoint, "/1m7.bin", length=SIZES["1m7.bin"], checksum="1234abcd", **common
    )
    assert wrong_sum.errors > 0 and "checksum" in wrong_sum.note
    wrong_length = run_http_load(server.endpoint, "/1m7.bin", length=5, checksum=None, **common)
    assert wrong_length.errors > 0 and "Content-Length" in wrong_length.note
    missing = run_http_load(server.endpoint, "/missing", length=0, checksum=None, **common)
    assert missing.errors > 0 and "status 404" in missing.note


@needs_cc
def test_checksum_depends_on_order_and_content(tmp_path, http_load):
    data = bytes(range(256)) * 100
    (tmp_path / "a").write_bytes(data)
    (tmp_path / "b").write_bytes(data[128:] + data[:128])  # same bytes, other order
    (tmp_path / "c").write_bytes(data[:-1] + b"\x00")
    sums = {file_checksum(tmp_path / n) for n in "abc"}
    assert len(sums) == 3


def test_http_load_rejects_bad_options(http_load):
    for args in (["--port", "1"], ["--port", "1", "--path", "no-slash"], ["--path", "/x"]):
        result = subprocess.run([http_load, *args], capture_output=True, text=True, timeout=10)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, args


WRK_OUTPUT = """Running 2s test @ http://127.0.0.1:8080/1k.bin
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   314.55us  172.51us   4.12ms   94.26%
    Req/Sec    26.09k     1.94k   32.76k    90.00%
  77784 requests in 3.00s, 94.80MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  25922.91
Transfer/sec:     31.59MB
"""


def test_parse_wrk_reads_rate_and_every_error_kind():
    assert parse_wrk(WRK_OUTPUT) == (25922.91, 7)
    assert parse_wrk("Requests/sec:  10.5\n") == (10.5, 0)
    with pytest.raises(ValueError):
        parse_wrk("wrk: connection refused")


def test_nginx_config_has_the_fair_baseline(tmp_path):
    conf = render_config("/srv", 8080, "/tmp/x/nginx.sock", str(tmp_path), sndbuf=1 << 20)
    for directive in (
        "worker_processes 1;",
        "sendfile on;",
        "tcp_nopush on;",
        "open_file_cache max=",
        "access_log off;",
        "keepalive_requests 100000000;",
        "listen 127.0.0.1:8080 sndbuf=1048576;",
        "listen unix:/tmp/x/nginx.sock sndbuf=1048576;",
        "root /srv;",
    ):
        assert directive in conf
    assert "sendfile off;" in render_config("/srv", 1, "/s", str(tmp_path), sendfile=False)


@pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")
@pytest.mark.timeout(60)
def test_nginx_starts_serves_and_stops(site):
    import http.client

    with Nginx(str(site)) as nginx:
        conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=10)
        conn.request("GET", "/hello.txt")
        assert conn.getresponse().read() == b"hello, world\n"
        conn.close()
    assert nginx.proc.poll() is not None


def run_row(repeat, server, size, req_per_s, client_bound=False):
    return {
        "repeat": repeat,
        "server": server,
        "transport": "unix",
        "size": size,
        "client": "http_load",
        "req_per_s": req_per_s,
        "mb_per_s": req_per_s * size / 1e6,
        "errors": 0,
        "seconds": 2.0,
        "server_cpu_s": 1.0,
        "client_bound": client_bound,
    }


def test_ratios_pair_runs_within_a_repeat_and_check_targets():
    runs = [
        run_row(0, "fastsock", 1024, 30.0),
        run_row(0, "nginx", 1024, 60.0),
        run_row(1, "fastsock", 1024, 40.0),
        run_row(1, "nginx", 1024, 100.0, client_bound=True),
        run_row(2, "fastsock", 1024, 10.0),
        run_row(2, "nginx", 1024, 10.0),
    ]
    rows = http_bench.ratios(runs)
    (row,) = [r for r in rows if r["ratio"] == "fastsock/nginx" and r["metric"] == "req_per_s"]
    assert row["median"] == pytest.approx(0.5)  # per-repeat ratios 0.5, 0.4, 1.0
    assert (row["min"], row["max"]) == (pytest.approx(0.4), pytest.approx(1.0))
    assert row["target"] == 0.5 and row["meets_target"]
    assert row["client_bound"] == {"fastsock": 0, "nginx": 1}
    summary = http_bench.summarize(runs)
    nginx = next(s for s in summary if s["server"] == "nginx")
    assert nginx["req_per_s"]["median"] == 60.0 and nginx["client_bound_runs"] == 1


@pytest.mark.parametrize(("text", "size"), [("1K", 1024), ("16M", 16 << 20), ("4096", 4096)])
def test_sizes_parse_and_label(text, size):
    assert http_bench.parse_size(text) == size
    assert http_bench.parse_size(http_bench.size_label(size)) == size
