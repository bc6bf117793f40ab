"""run_load against real servers: counts, schema, every workload, UNIX and TCP, merging."""

from __future__ import annotations

import json

import pytest

from fastsock.address import tcp_endpoint, unix_endpoint
from fastsock.load import SCHEMA, ConfigError, ConnectError, run_load
from fastsock.load.verify import ERROR_KINDS
from fastsock.load.window import LATENCY_WORKLOADS
from tests.load.conftest import free_tcp_port, quick_config

LATENCY_KEYS = {"min", "p50", "p90", "p99", "p999", "p9999", "max", "mean", "stdev", "count"}
CPU_KEYS = {
    "client_user_s",
    "client_sys_s",
    "client_cpu_util",
    "client_cores",
    "client_bound",
    "server_user_s",
    "server_sys_s",
    "server_cpu_util",
}
METADATA_KEYS = {
    "cpu_model_name",
    "cpu_count",
    "platform",
    "kernel",
    "python_version",
    "fastsock_version",
    "hostname",
    "date",
    "command_line",
    "cpu_affinity",
}


def check_schema(result: dict) -> None:
    """The fastsock.load/1 contract other code reads."""
    assert result["schema"] == SCHEMA
    json.dumps(result)  # plain JSON types only
    assert set(result["params"]) >= {
        "endpoint",
        "transport",
        "workload",
        "size",
        "conns",
        "depth",
        "duration",
        "warmup",
        "rate",
        "loop",
        "procs",
        "engine",
    }
    assert result["params"]["engine"] in ("python", "native")
    for key in ("messages", "bytes"):
        assert isinstance(result[key], int)
    for key in ("elapsed_s", "msgs_per_s", "mb_per_s"):
        assert isinstance(result[key], float)
    assert set(result["errors"]) == {"total", *ERROR_KINDS}
    assert result["errors"]["total"] == sum(v for k, v in result["errors"].items() if k != "total")
    assert set(result["cpu"]) == CPU_KEYS
    assert set(result["metadata"]) >= METADATA_KEYS
    fair = result["per_connection"]  # tests/load/test_fairness.py checks the arithmetic
    assert fair is None or set(fair) == {"conns", "min", "p50", "max", "jain"}
    if result["params"]["workload"] in LATENCY_WORKLOADS:
        assert set(result["latency_us"]) >= LATENCY_KEYS
        assert isinstance(result["histogram"], str)
        assert result["latency_spectrum"][-1][0] == 100.0
    else:
        assert result["latency_us"] is None
        assert result["latency_spectrum"] is None
        assert result["histogram"] is None


def check_clean_echo(result: dict, size: int) -> None:
    check_schema(result)
    assert result["errors"]["total"] == 0, result["error_samples"]
    assert result["messages"] > 0
    assert result["bytes"] == result["messages"] * size
    # Closed loop: exactly one latency per message completed in the window.
    assert result["latency_us"]["count"] == result["messages"]
    lat = result["latency_us"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"]
    rate = result["messages"] / result["elapsed_s"]
    if result["params"]["procs"] == 1:
        assert result["msgs_per_s"] == pytest.approx(rate, rel=0.01)
        assert result["mb_per_s"] == pytest.approx(rate * size / 1e6, rel=0.01)
    else:
        # A sum of per-process rates, each over its own window, while elapsed_s is the longest
        # window: on a busy machine a worker's window can end several ms late, so the sum is
        # at least messages / elapsed_s, not equal to it (SCHEMA.md).
        assert rate * 0.999 <= result["msgs_per_s"] <= rate * 1.5
        assert result["mb_per_s"] == pytest.approx(result["msgs_per_s"] * size / 1e6, rel=0.01)


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_echo_counts_and_schema(fastsock_server, transport: str, engine: str) -> None:
    server = fastsock_server("echo", transport)
    result = run_load(quick_config(server.endpoint, server_pid=server.pid, engine=engine))
    check_clean_echo(result, 64)
    assert result["params"]["transport"] == transport
    assert result["params"]["engine"] == engine
    assert result["params"]["endpoint"] == str(server.endpoint)
    assert result["elapsed_s"] == pytest.approx(0.5, abs=0.1)
    cpu = result["cpu"]
    assert cpu["client_user_s"] + cpu["client_sys_s"] > 0
    assert cpu["server_cpu_util"] is not None and cpu["server_cpu_util"] > 0
    assert cpu["client_cores"] == 1


def test_depth_and_partial_messages(fastsock_server, engine: str) -> None:
    # 100 KiB messages, 3 in flight: every message crosses several reads and writes.
    server = fastsock_server("echo", "unix")
    result = run_load(
        quick_config(server.endpoint, size=100 * 1024, conns=2, depth=3, engine=engine)
    )
    check_clean_echo(result, 100 * 1024)


@pytest.mark.timeout(120)
def test_16mib_messages_do_not_deadlock(fastsock_server, engine: str) -> None:
    # The client must read while it writes, or both sides stall with full socket buffers.
    server = fastsock_server("echo", "tcp")
    result = run_load(
        quick_config(
            server.endpoint, size=16 << 20, conns=1, depth=2, duration=1.0, warmup=0, engine=engine
        )
    )
    check_clean_echo(result, 16 << 20)


def test_procs_merge(fastsock_server, engine: str) -> None:
    server = fastsock_server("echo", "unix")
    result = run_load(
        quick_config(server.endpoint, conns=5, procs=2, server_pid=server.pid, engine=engine)
    )
    check_clean_echo(result, 64)
    assert result["params"]["procs"] == 2
    assert result["cpu"]["client_cores"] in (1, 2)  # 1 if this process is pinned to one CPU
    assert result["cpu"]["server_cpu_util"] is not None


def test_many_connections(fastsock_server, engine: str) -> None:
    server = fastsock_server("echo", "unix")
    result = run_load(quick_config(server.endpoint, conns=300, duration=0.5, engine=engine))
    check_clean_echo(result, 64)
    assert result["conns_alive"] == 300


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_send_workload(fastsock_server, transport: str, engine: str) -> None:
    server = fastsock_server("discard", transport)
    result = run_load(quick_config(server.endpoint, size=4096, workload="send", engine=engine))
    check_schema(result)
    assert result["errors"]["total"] == 0, result["error_samples"]
    assert result["messages"] > 0
    assert result["messages"] == result["bytes"] // 4096


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_recv_workload_verifies_the_source_stream(
    fastsock_server, transport: str, engine: str
) -> None:
    server = fastsock_server("source", transport)
    result = run_load(quick_config(server.endpoint, size=4096, workload="recv", engine=engine))
    check_schema(result)
    assert result["errors"]["total"] == 0, result["error_samples"]
    assert result["messages"] == result["bytes"] // 4096 > 0


def test_echo_against_a_source_server_is_a_mismatch(fastsock_server, engine: str) -> None:
    server = fastsock_server("source", "tcp")
    result = run_load(quick_config(server.endpoint, conns=1, engine=engine))
    assert result["errors"]["mismatch"] >= 1


def test_open_loop_keeps_its_schedule(fastsock_server, engine: str) -> None:
    server = fastsock_server("echo", "tcp")
    rate, duration = 400.0, 1.0
    result = run_load(
        quick_config(server.endpoint, rate=rate, duration=duration, procs=2, engine=engine)
    )
    check_schema(result)
    assert result["params"]["loop"] == "open"
    assert result["errors"]["total"] == 0
    # A slow machine answers late, not less: every scheduled message is counted, completed in
    # the window or recorded by its age at the end.
    scheduled = result["messages"] + result["latency_us"]["incomplete"]
    assert scheduled == pytest.approx(rate * duration, rel=0.1, abs=10)


def test_open_loop_send(fastsock_server, engine: str) -> None:
    server = fastsock_server("discard", "unix")
    result = run_load(
        quick_config(server.endpoint, rate=500.0, duration=1.0, workload="send", engine=engine)
    )
    assert result["errors"]["total"] == 0
    assert result["messages"] == pytest.approx(500, rel=0.1, abs=10)


def test_corrupted_byte_is_one_mismatch(misbehaving, engine: str) -> None:
    server = misbehaving("unix", corrupt_at=64 * 10 + 5)
    result = run_load(quick_config(server.endpoint, conns=3, engine=engine))
    assert server.corrupted
    assert result["errors"]["mismatch"] == 1
    assert result["errors"]["total"] == 1
    assert "mismatch" in result["error_samples"][0]


def test_server_closing_mid_run_is_counted(misbehaving, engine: str) -> None:
    server = misbehaving("tcp", close_after=64 * 5 + 10)
    result = run_load(quick_config(server.endpoint, conns=2, warmup=0.0, engine=engine))
    assert result["errors"]["short_read"] == 2
    assert result["conns_alive"] == 0


def test_refused(tmp_path, engine: str) -> None:
    with pytest.raises(ConnectError) as err:
        run_load(quick_config(tcp_endpoint("127.0.0.1", free_tcp_port()), engine=engine))
    assert err.value.kind == "refused"
    with pytest.raises(ConnectError) as err:
        run_load(quick_config(unix_endpoint(str(tmp_path / "nobody.sock")), procs=2, engine=engine))
    assert err.value.kind == "no_socket"


def test_bad_server_pid(fastsock_server, engine: str) -> None:
    server = fastsock_server("echo", "tcp")
    with pytest.raises(ConfigError, match="server-pid"):
        run_load(quick_config(server.endpoint, server_pid=2**22 + 12345, engine=engine))
