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
    argv = server_argv("fastsock-uring-own", where)
    assert argv[-2:] == ["--uring-pool", "off"] and "uring" in argv
    assert set(VARIANTS) == {"fastsock-uring-own", "fastsock-uring-64k"}


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
