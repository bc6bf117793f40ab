"""bench.studies.scale: the summary of a scale point drawn from a fixture, and the two measuring
functions against a real (small) server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench.studies.scale import (
    VARIANTS,
    measure_idle,
    measure_load,
    proc_status_kb,
    raise_nofile,
    server_argv,
    summarise,
)
from fastsock.address import unix_endpoint

RUNS = Path(__file__).parent / "fixtures" / "scale" / "runs.json"
FASTSOCK = [sys.executable, "-m", "fastsock", "serve"]


def test_a_scale_point_from_the_fixture() -> None:
    runs = json.loads(RUNS.read_text(encoding="utf-8"))
    runs.pop("_comment")
    out = summarise(runs, "fastsock")
    ref, uring = out["fastsock"], out["fastsock-uring"]
    assert ref["msgs_per_s"] == 45000.0  # the median of 50k and 40k
    assert ref["server_peak_rss_kb"] == 35000
    assert ref["jain"] == pytest.approx(0.98)
    assert "msgs_per_s_vs_fastsock" not in ref  # no ratio of the reference to itself
    # Same-round ratios: 45/50 and 44/40; 51/34 and 54/36.
    assert uring["msgs_per_s_vs_fastsock"] == {"median": 1.0, "min": 0.9, "max": 1.1}
    assert uring["server_peak_rss_kb_vs_fastsock"] == {"median": 1.5, "min": 1.5, "max": 1.5}
    assert uring["rss_per_conn_kb"] == pytest.approx(4.8125)
    assert uring["jain"] == pytest.approx(0.85)
    assert uring["p99_us"] == 1250000.0


def test_a_round_that_failed_gives_no_ratio() -> None:
    runs = json.loads(RUNS.read_text(encoding="utf-8"))
    runs.pop("_comment")
    runs["fastsock-uring"].pop()
    out = summarise(runs, "fastsock")
    assert "msgs_per_s_vs_fastsock" not in out["fastsock-uring"]


def test_variants_extend_the_registry(tmp_path) -> None:
    where = unix_endpoint(str(tmp_path / "x.sock"))
    argv = server_argv("fastsock-uring-64k", where)
    assert argv[-2:] == ["--uring-pool", "256x64K"] and "uring" in argv
    assert set(VARIANTS) == {"fastsock-uring-64k", "fastsock-uring-nolarge"}
    nolarge = server_argv("fastsock-uring-nolarge", where)
    assert nolarge[-1] == "--uring-no-large" and "uring" in nolarge


def test_a_server_from_another_source_tree(tmp_path) -> None:
    """NAME@TREE: the same server's command line, run with TREE first on sys.path (python -P,
    or the working directory's tree would shadow it)."""
    from bench.studies.scale import base_name

    where = unix_endpoint(str(tmp_path / "x.sock"))
    argv = server_argv(f"fastsock-uring-nolarge@{tmp_path}", where)
    plain = server_argv("fastsock-uring-nolarge", where)
    assert argv[:2] == ["env", f"PYTHONPATH={tmp_path}"]
    assert argv[2] == plain[0] and argv[3] == "-P" and argv[4:] == plain[1:]
    assert base_name(f"fastsock-uring-nolarge@{tmp_path}") == "fastsock-uring"
    with pytest.raises(ValueError, match="not a fastsock server"):
        server_argv(f"c-epoll@{tmp_path}", where)


def test_open_files_are_raised_to_the_hard_limit() -> None:
    import resource

    soft = raise_nofile()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert soft == hard or hard == resource.RLIM_INFINITY


@pytest.mark.timeout(60)
def test_measure_load_on_a_real_server(tmp_path) -> None:
    where = unix_endpoint(str(tmp_path / "s.sock"))
    run = measure_load(
        [*FASTSOCK, "--unix", where.path], where, conns=6, size=64, duration=0.3, warmup=0.1
    )
    assert run["errors"] == 0
    assert run["msgs_per_s"] > 0
    assert run["per_connection"]["conns"] == 6
    assert run["server_peak_rss_kb"] >= run["server_rss_before_kb"] > 0
    assert run["rss_per_conn_kb"] == pytest.approx(
        (run["server_peak_rss_kb"] - run["server_rss_before_kb"]) / 6, abs=0.001
    )


@pytest.mark.timeout(60)
def test_measure_idle_on_a_real_server(tmp_path) -> None:
    where = unix_endpoint(str(tmp_path / "i.sock"))
    idle = measure_idle([*FASTSOCK, "--unix", where.path], where, conns=20)
    assert idle["conns"] == 20
    assert idle["server_rss_idle_kb"] > 0
    assert idle["idle_kb_per_conn"] == pytest.approx(
        (idle["server_rss_idle_kb"] - idle["server_rss_before_kb"]) / 20, abs=0.001
    )


def test_proc_status_reads_this_process() -> None:
    import os

    assert proc_status_kb(os.getpid(), "VmRSS") > 0
    with pytest.raises(KeyError):
        proc_status_kb(os.getpid(), "NoSuchField")


def _scale_doc() -> dict:
    """A scale.json made from the fixture's runs: the same point at 100 and 8,000 connections,
    the second with every rate halved, and an idle measurement."""
    runs = json.loads(RUNS.read_text(encoding="utf-8"))
    runs.pop("_comment")
    slow = json.loads(json.dumps(runs))
    for samples in slow.values():
        for r in samples:
            r["msgs_per_s"] /= 2
    idle = {"kind": "idle", "server": "fastsock", "round": 0, "conns": 8000,
            "idle_kb_per_conn": 1.73, "after_echo_kb_per_conn": 1.75}  # fmt: skip
    return {
        "schema": "fastsock.scale/1",
        "params": {"transport": "unix", "rounds": 2, "duration": 2.0, "warmup": 0.5},
        "metadata": {"date": "2026-12-07T00:00:00", "load_average": [0.2, 0.3, 0.4]},
        "results": [
            {"kind": "load", "size": 65536, "conns": 100, "servers": summarise(runs, "fastsock")},
            {"kind": "load", "size": 65536, "conns": 8000, "servers": summarise(slow, "fastsock")},
            idle,
        ],
    }


@pytest.mark.timeout(60)
def test_the_report_section_and_chart_come_from_scale_json(tmp_path) -> None:
    from fastsock.report import scale as report_scale

    doc = _scale_doc()
    lines = "\n".join(report_scale.section(doc, tmp_path))
    assert (tmp_path / "scale.png").stat().st_size > 10_000
    assert "## Cost as connections grow: 1 to 8,000" in lines
    # fastsock: 45k msgs/s at 100 connections, half that at 8,000: the bend is named.
    assert (
        "fastsock (epoll), 64 KiB: peaked at 45k msgs/s with 100 connections, fell to 50%" in lines
    )
    assert "| fastsock (epoll) | 64 KiB | 8,000 | 22.5k |" in lines
    assert "load average 0.20, 0.30, 0.40" in lines
    assert "| fastsock (epoll) | 1.73 | 1.75 |" in lines


def test_the_section_is_in_report_md_when_scale_json_is_beside(fixture_copy: Path) -> None:
    from click.testing import CliRunner

    from fastsock.cli import main as fastsock_main

    (fixture_copy.parent / "scale.json").write_text(json.dumps(_scale_doc()))
    result = CliRunner().invoke(fastsock_main, ["plot", str(fixture_copy)])
    assert result.exit_code == 0, result.output
    assert "## Cost as connections grow" in (fixture_copy.parent / "REPORT.md").read_text()


@pytest.mark.timeout(30)
def test_paired_trials_restart_the_servers_in_alternating_order(monkeypatch, tmp_path) -> None:
    """--paired splits its trials into --restarts blocks of new servers, started A first then B
    first (a fixed start order biased an A/A run by 3-4%), and every trial is paired."""
    from bench.studies import scale

    started: list[str] = []
    stopped: list[int] = []

    class FakeServer:
        def __init__(self, argv, env=None, ready_timeout=0) -> None:
            self.name = "b" if "uring" in argv else "a"
            self.pid = 1000 + len(started)
            self.endpoint = argv
            started.append(self.name)

        def stop(self) -> None:
            stopped.append(self.pid)

    def fake_load(endpoint, *, server_pid, **_) -> dict:
        rate = 200.0 if "uring" in endpoint else 100.0  # B twice as fast as A
        return {
            "msgs_per_s": rate,
            "cpu": {"server_cpu_util": 0.5},
            "latency_us": {"p99": 1000.0},
            "errors": {"total": 0},
            "per_connection": {"jain": 1.0},
        }

    monkeypatch.setattr(scale, "ServerProcess", FakeServer)
    monkeypatch.setattr(scale, "run_fastsock_load", fake_load)
    res = scale.paired(
        "fastsock", "fastsock-uring", transport="unix", tmp=str(tmp_path), conns=2, size=64,
        trials=7, trial_s=0.1, restarts=2, seed=1,
    )  # fmt: skip
    assert started == ["a", "b", "b", "a"] and len(stopped) == 4
    assert res["restarts"] == 2
    for key in ("a", "b"):
        blocks = [t["block"] for t in res["trials"][key]]
        assert len(blocks) == 7 and blocks == sorted(blocks) and set(blocks) == {0, 1}
    firsts = [(t["block"], t["started_first"]) for t in res["trials"]["a"]]
    assert all(first == (block == 0) for block, first in firsts)
    (rate,) = [f for f in res["findings"] if f["metric"] == "msgs_per_s"]
    assert rate["estimate"] == pytest.approx(0.5) and rate["n"] == 7
    # One value per restart: the CI's n counts server instances, not trials.
    (by_restart,) = [f for f in res["findings_by_restart"] if f["metric"] == "msgs_per_s"]
    assert by_restart["estimate"] == pytest.approx(0.5) and by_restart["n"] == 2


def test_block_means_are_geometric_per_block() -> None:
    from bench.studies.scale import block_means

    trials = [
        {"block": 0, "x": 1.0},
        {"block": 0, "x": 4.0},
        {"block": 1, "x": 9.0},
        {"block": 2, "x": None},
    ]
    assert block_means(trials, "x") == [pytest.approx(2.0), pytest.approx(9.0), None]


def test_restarts_below_one_is_a_usage_error(capsys) -> None:
    from bench.studies.scale import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--paired", "fastsock,fastsock-uring", "--restarts", "0"])
    assert exit_info.value.code == 2
    assert "--restarts must be 1 or more, not 0" in capsys.readouterr().err
