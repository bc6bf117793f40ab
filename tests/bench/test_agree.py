"""The server warm-up of the harness and the engine-agreement study (issue 11).

The speed effects themselves (a cold asyncio server, the engines' agreement) are benchmark
results, not tests: these tests pin down the mechanics that produce and label them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.matrix import servers
from bench.peers.warm import warm_up
from bench.studies import agree_load, calibrate_load, stall
from fastsock.address import tcp_endpoint, unix_endpoint
from fastsock.pressure import cpu_pressure_us
from tests.load.conftest import MisbehavingServer, free_tcp_port


def test_warm_up_runs_whole_connections_against_an_echo_server(tmp_path: Path) -> None:
    with MisbehavingServer(unix_endpoint(str(tmp_path / "echo.sock"))) as server:
        warm_up(server.endpoint, conns=3, messages=2)


def test_warm_up_refuses_a_wrong_echo(tmp_path: Path) -> None:
    ep = unix_endpoint(str(tmp_path / "bad.sock"))
    with MisbehavingServer(ep, corrupt_at=10) as server, pytest.raises(RuntimeError, match="other"):
        warm_up(server.endpoint)


def test_warm_up_refuses_a_server_that_hangs_up(tmp_path: Path) -> None:
    ep = unix_endpoint(str(tmp_path / "short.sock"))
    with (
        MisbehavingServer(ep, close_after=10) as server,
        pytest.raises(RuntimeError, match="closed"),
    ):
        warm_up(server.endpoint)


def test_warm_up_of_nothing_listening_is_an_os_error() -> None:
    with pytest.raises(ConnectionRefusedError):
        warm_up(tcp_endpoint("127.0.0.1", free_tcp_port()))


def _record_calls(monkeypatch: pytest.MonkeyPatch, module: object, calls: list) -> None:
    def warm(endpoint: object, *args: object, **kwargs: object) -> None:
        calls.append("warm")

    monkeypatch.setattr(module, "warm_up", warm)


def test_calibration_warms_its_server_before_the_first_measured_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list = []
    _record_calls(monkeypatch, calibrate_load, calls)

    def fake_run(name: str, endpoint, server, args, depth: int) -> dict:
        calls.append(name)
        return {
            "client": name,
            "msgs_per_s": 1000.0,
            "p50_us": 100.0,
            "client_cpu_util": 0.2,
            "server_cpu_util_whole_run": 0.5,
        }

    monkeypatch.setattr(calibrate_load, "one_run", fake_run)
    args = argparse.Namespace(
        server="asyncio-protocol", clients=["native-p1", "python-p1"], repeats=2, pin=False
    )
    calibrate_load.calibrate_transport("unix", 1, args, str(tmp_path))
    assert calls == ["warm", "native-p1", "python-p1", "python-p1", "native-p1"]


def test_the_matrix_pool_warms_a_stream_server_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list = []
    _record_calls(monkeypatch, servers, calls)
    with servers.ServerPool(tmp_path) as pool:
        first = pool.get("asyncio-protocol", "unix", None)
        assert pool.get("asyncio-protocol", "unix", None) is first
    assert calls == ["warm"]


def _runs(pairs: list[tuple[float, float, float, float]], cores: int = 1) -> list[dict]:
    """Two clients per repeat: (native msgs/s, python msgs/s, native cpu, python cpu), p50 by
    Little's law for 32 connections, so the p50 ratio is the inverse of the msgs/s ratio."""
    runs = []
    for repeat, (n_msgs, p_msgs, n_cpu, p_cpu) in enumerate(pairs):
        for name, msgs, cpu in (("native-p1", n_msgs, n_cpu), ("python-p1", p_msgs, p_cpu)):
            runs.append(
                {
                    "client": name,
                    "repeat": repeat,
                    "msgs_per_s": msgs,
                    "p50_us": 32e6 / msgs,
                    "client_cpu_util": cpu * (cores if name == "python-p1" else 1),
                    "client_cores": cores if name == "python-p1" else 1,
                    "server_cpu_util_window": 0.95,
                }
            )
    return runs


def _point(runs: list[dict]) -> dict:
    return {"transport": "unix", "kind": "d", "depth": 1, "rate": None, "runs": runs}


def test_agreement_within_tolerance_where_both_clients_have_headroom() -> None:
    res = _point(_runs([(100.0, 104.0, 0.3, 0.5), (100.0, 97.0, 0.3, 0.45), (90, 95, 0.3, 0.5)]))
    agree = agree_load.agreement(res, 0.6, 0.10)
    assert agree["neither_client_bound"]
    assert agree["clients"]["python-p1"] == {"cpu_util_per_core_max": 0.5, "below_threshold": True}
    pair = agree["ratios"]["python-p1/native-p1"]
    assert pair["msgs_per_s"]["min"] == pytest.approx(0.97)
    assert pair["msgs_per_s"]["max"] == pytest.approx(95 / 90)
    assert pair["msgs_per_s"]["median"] == pytest.approx(1.04)
    assert pair["p50_us"]["median"] == pytest.approx(1 / 1.04)
    assert pair["verdict"] == "agree"


def test_a_difference_beyond_tolerance_is_reported() -> None:
    res = _point(_runs([(100.0, 85.0, 0.3, 0.5), (100.0, 86.0, 0.3, 0.5)]))
    assert agree_load.agreement(res, 0.6, 0.10)["ratios"]["python-p1/native-p1"]["verdict"] == (
        "differ"
    )


def test_a_client_over_the_threshold_in_any_repeat_makes_the_point_client_bound() -> None:
    res = _point(_runs([(100.0, 100.0, 0.3, 0.5), (100.0, 100.0, 0.3, 0.65)]))
    agree = agree_load.agreement(res, 0.6, 0.10)
    assert not agree["neither_client_bound"]
    assert agree["clients"]["python-p1"]["below_threshold"] is False
    assert agree["ratios"]["python-p1/native-p1"]["verdict"] == "client-bound"


def test_a_two_process_client_is_judged_per_core() -> None:
    res = _point(_runs([(100.0, 100.0, 0.3, 0.5)], cores=2))  # 1.0 of 2 cores
    assert agree_load.agreement(res, 0.6, 0.10)["clients"]["python-p1"] == {
        "cpu_util_per_core_max": 0.5,
        "below_threshold": True,
    }


def test_a_stall_point_compares_the_tail() -> None:
    res = _point(_runs([(100.0, 100.0, 0.1, 0.1)]))
    res["kind"] = "s"
    for run in res["runs"]:
        run.update(p90_us=8e5, p99_us=9.8e5 if run["client"] == "native-p1" else 9.0e5)
    pair = agree_load.agreement(res, 0.6, 0.05)["ratios"]["python-p1/native-p1"]
    assert set(pair) == {"p90_us", "p99_us", "verdict"}
    assert pair["p99_us"]["median"] == pytest.approx(9.0 / 9.8)
    assert pair["verdict"] == "differ"


def test_points_parse_closed_open_and_stall() -> None:
    points = agree_load.parse_points("d1, d8,r10000,s1000")
    assert points == [("d", 1), ("d", 8), ("r", 10000.0), ("s", 1000.0)]
    for bad in ("x1", "d", "r0", "d0", "rfast", "d1.5"):
        with pytest.raises(ValueError, match="--points"):
            agree_load.parse_points(bad)


def test_bad_usage_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    for argv in (
        ["--points", "q3"],
        ["--clients", "native-p1"],
        ["--max-client-cpu", "2"],
        ["--busy-us", "-1"],
        ["--busy-us", "5", "--server", "asyncio-protocol"],
        ["--open-busy-us", "-2"],
    ):
        with pytest.raises(SystemExit) as exc:
            agree_load.main(["--out", str(tmp_path / "x.json"), *argv])
        assert exc.value.code == 2
        assert "Traceback" not in capsys.readouterr().err


@pytest.mark.timeout(60)
def test_a_short_agreement_run_reports_the_threshold_and_the_ratios(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "agree.json"
    argv = ["--out", str(out), "--transports", "unix", "--points", "d1,r2000"]
    argv += ["--repeats", "1", "--duration", "0.2", "--warmup", "0.05"]
    assert agree_load.main(argv) == 0
    doc = json.loads(out.read_text())
    assert doc["schema"] == "fastsock.calibrate_agree/1"
    kinds = [(r["kind"], r["depth"], r["rate"]) for r in doc["results"]]
    assert kinds == [("d", 1, None), ("r", 1, 2000.0)]
    # The closed loop's server spun the study's 200 µs per 64 B read, not the registered peer's
    # 50: at depth 1 every read is one message, so it cannot answer 5,000 msgs/s (at 50 µs it
    # answers ~15,000). The open loop's spun 50.
    assert doc["params"]["busy_us"] == agree_load.DEFAULT_BUSY_US == 200
    assert [r["server_options"] for r in doc["results"]] == [
        ["--busy-us", "200"],
        ["--busy-us", "50"],
    ]
    assert all(r["msgs_per_s"] < 5000 for r in doc["results"][0]["runs"])
    for res in doc["results"]:
        agree = res["agreement"]
        assert agree["max_client_cpu"] == 0.6
        assert set(agree["clients"]) == {"native-p1", "python-p1"}
        assert all(isinstance(c["below_threshold"], bool) for c in agree["clients"].values())
        pair = agree["ratios"]["python-p1/native-p1"]
        assert pair["msgs_per_s"]["n"] == 1 and pair["p50_us"]["median"] > 0
        assert pair["verdict"] in ("agree", "differ", "client-bound")
        assert all(r["load_avg_1m"] >= 0 for r in res["runs"])
        # Where the kernel has PSI, every run says how much of it some task waited for a CPU.
        if cpu_pressure_us() is not None:
            assert all(0 <= r["cpu_pressure"] <= 1.05 for r in res["runs"])
    # The open-loop point ran at the offered rate (each client kept the schedule). Wide margin:
    # messages still in flight when a 0.2 s window closes are not counted as completed.
    open_runs = doc["results"][1]["runs"]
    assert all(1500 < r["msgs_per_s"] < 2200 for r in open_runs)
    table = capsys.readouterr().out
    assert "unix r2000" in table and "unix d1" in table and "python-p1/native-p1" in table


def test_the_module_runs_as_a_script() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.studies.agree_load", "--points", "zz", "--out", "x"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("agree_load.py: error: --points")


@pytest.mark.timeout(60)
def test_a_stall_point_stops_the_server_for_a_second_and_both_engines_see_it(
    tmp_path: Path,
) -> None:
    args = argparse.Namespace(
        server="asyncio-protocol",
        clients=["native-p1", "python-p1"],
        repeats=1,
        size=64,
        conns=4,
        duration=1.8,
        warmup=0.05,
        rate=500.0,
    )
    res = stall.stall_point("unix", args, str(tmp_path))
    assert [r["client"] for r in res["runs"]] == ["native-p1", "python-p1"]
    for run in res["runs"]:
        # Every message due in the stop waits for its end: the max is the stop, and with
        # 1 s of 1.8 s stopped more than 10% of the messages waited a good part of it.
        assert run["max_us"] >= 0.9 * stall.PAUSE * 1e6
        assert run["p90_us"] >= 0.2 * stall.PAUSE * 1e6
