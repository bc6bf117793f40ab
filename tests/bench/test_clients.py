"""The harness's client pieces on their own: the pyperf ping-pong and a failing load run."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from bench.matrix.loadrun import measure
from bench.matrix.placement import check
from bench.matrix.plan import Variant
from bench.matrix.rtt import PingPong
from fastsock.address import tcp_endpoint, unix_endpoint


class Echo(threading.Thread):
    """A blocking echo server for one connection, optionally corrupting one byte."""

    def __init__(self, path: str, corrupt: bool = False) -> None:
        super().__init__(daemon=True)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(1)
        self.corrupt = corrupt

    def run(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            while data := conn.recv(65536):
                if self.corrupt:
                    data = bytes([data[0] ^ 1]) + data[1:]
                    self.corrupt = False
                conn.sendall(data)


@pytest.mark.parametrize("size", [1, 64, 65536, 65537, 1 << 20])
def test_ping_pong_round_trips(tmp_path: Path, size: int) -> None:
    # Above 64 KiB the client writes and reads at once; a plain sendall of 1 MiB to an echo
    # server that blocks on its own full send buffer would deadlock here.
    path = str(tmp_path / "e.sock")
    server = Echo(path)
    server.start()
    pp = PingPong(unix_endpoint(path), size)
    for _ in range(3):
        pp.round_trip()
    pp.sock.close()
    server.join(timeout=5)
    assert not server.is_alive()


def test_ping_pong_detects_a_wrong_echo(tmp_path: Path) -> None:
    path = str(tmp_path / "e.sock")
    Echo(path, corrupt=True).start()
    pp = PingPong(unix_endpoint(path), 64)
    with pytest.raises(ValueError, match="echo mismatch"):
        pp.round_trip()
    pp.sock.close()


def test_failed_load_run_is_recorded_not_raised(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        endpoint = tcp_endpoint("127.0.0.1", s.getsockname()[1])
        settings = {"duration": 0.1, "warmup": 0.0}
        run = measure(endpoint, Variant("fastsock", "tcp", 64), settings, 1, {}, tmp_path / "j")
    assert run["status"] == "failed"
    assert run["error"].startswith("fastsock load:")
    assert "\n" not in run["error"]


def test_placement_check() -> None:
    assert check("same-core", {"server": [0], "client": [0]}, {0, 1}) is None
    assert check("unpinned", {}, {0}) is None
    why = check("cross-core", {"server": [0], "client": [1]}, {0})
    assert why is not None and "CPU [1]" in why


def test_c_load_client_result_fits_the_load_schema() -> None:
    """The C client's JSON, reshaped, is a valid `load` object of the results schema."""
    from bench.matrix.loadrun import c_result_as_load
    from bench.matrix.plan import Variant
    from fastsock.address import unix_endpoint
    from fastsock.report.results import schema, validate

    raw = {
        "msgs_per_s": 900000.0,
        "mb_per_s": 57.6,
        "messages": 270000,
        "elapsed_s": 0.3,
        "errors": 0,
        "conns": 32,
        "size": 64,
        "depth": 8,
        "cpu_user_s": 0.06,
        "cpu_sys_s": 0.15,
    }
    v = Variant("fastsock", "unix", 64, 32, 8)
    settings = {"duration": 0.3, "warmup": 0.15}
    load = c_result_as_load(raw, unix_endpoint("/tmp/x.sock"), v, settings, (0.3, 0.1), 0.5)
    s = schema()
    assert validate(load, {**s["$defs"]["load"], "$defs": s["$defs"]}) == []
    assert load["latency_us"] is None
    assert load["cpu"]["client_cpu_util"] == pytest.approx(0.7)
    assert load["cpu"]["client_bound"] is False
    assert load["cpu"]["server_cpu_util"] == pytest.approx(0.8)


@pytest.mark.timeout(60)
def test_c_client_measures_a_real_server(serve) -> None:
    from bench.peers.registry import build_c_peers

    if build_c_peers().get("load_client") is not None:
        pytest.skip("no C compiler: the harness falls back to fastsock load")
    server = serve("--port", "0")
    settings = {"duration": 0.3, "warmup": 0.1}
    v = Variant("fastsock", "tcp", 64, 4, 2)
    run = measure(server.endpoint, v, settings, server.pid, {}, Path("unused"), client="c")
    assert run["status"] == "ok", run["error"]
    load = run["load"]
    assert load["msgs_per_s"] > 0 and load["errors"]["total"] == 0
    assert load["cpu"]["server_cpu_util"] is not None
