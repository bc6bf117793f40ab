"""The real-server chart and REPORT.md section, drawn from an apps.json beside bench.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bench.apps.__main__ import SCHEMA
from bench.apps.stats import paired_ratios, summarize
from fastsock import findings as F
from fastsock.report.report import write_report
from fastsock.report.results import load_results
from tests.bench.conftest import FIXTURE_RESULTS


def _row(app, case, transport, repeat, value, size=64):
    return {"app": app, "case": case, "params": {"size": size}, "transport": transport,
            "repeat": repeat, "metric": "req_per_s", "value": value, "latency_ms": {},
            "client_bound": False}  # fmt: skip


def apps_doc(redis_unix: float = 150.0) -> dict:
    rows = []
    for rep in range(3):
        rows += [_row("redis", "GET 64 B P1", "unix", rep, redis_unix + rep),
                 _row("redis", "GET 64 B P1", "tcp", rep, 100.0),
                 _row("postgres", "select-only", "unix", rep, 110.0),
                 _row("postgres", "select-only", "tcp", rep, 100.0),
                 _row("container", "fastsock echo 64 B", "unix", rep, 300.0),
                 _row("container", "fastsock echo 64 B", "tcp", rep, 200.0),
                 _row("container", "fastsock echo 64 B", "veth", rep, 160.0)]  # fmt: skip
    return {
        "schema": SCHEMA,
        "metadata": {"date": "2026-01-01T00:00:00"},
        "parameters": {"profile": "quick", "matrix": {"repeats": 3}},
        "skipped": ["proxy: nginx is not installed"],
        "notes": [],
        "runs": rows,
        "summary": summarize(rows),
        "ratios": paired_ratios(rows) + paired_ratios(rows, "veth", "tcp"),
    }


def _plot(folder: Path, doc: dict) -> tuple[str, bytes]:
    """REPORT.md and the apps chart as ``fastsock plot`` writes them, without the bench.json
    charts (tests/bench/test_plots.py draws those; each costs seconds of matplotlib)."""
    shutil.copy(FIXTURE_RESULTS, folder / "bench.json")
    (folder / "apps.json").write_text(json.dumps(doc))
    write_report(load_results(folder / "bench.json"), [], folder, "bench.json", folder)
    return (folder / "REPORT.md").read_text(), (folder / "apps-unix-tcp.png").read_bytes()


def test_apps_section_figures_come_from_apps_json(tmp_path: Path) -> None:
    report, png = _plot(tmp_path, apps_doc())
    assert "## Real servers: Redis, PostgreSQL, an nginx proxy and the container path" in report
    assert "(apps-unix-tcp.png)" in report and len(png) > 10_000
    # Paired repeats: redis 150-152/100, postgres 110/100, veth 160/200, each with its CI.
    redis = F.finding("r", "q", "UNIX", "TCP", "m", [150, 151, 152], [100, 100, 100])
    assert f"| redis | GET 64 B P1 | {F.ratio_text(redis)} greater |" in report
    assert "| postgres | select-only | 1.10× (1.10–1.10) greater |" in report
    assert "veth ÷ TCP loopback 0.80× (0.80–0.80) less" in report
    assert "0 of 1 reach 1.3×" in report  # postgres against the published claim
    assert "skipped: proxy: nginx is not installed" in report
    assert "paid for that crossing (every case's 95% CI below 1)" in report


def test_apps_chart_and_section_redraw_identically_and_follow_the_data(tmp_path: Path) -> None:
    for name in "abc":
        (tmp_path / name).mkdir()
    first = _plot(tmp_path / "a", apps_doc())
    assert _plot(tmp_path / "b", apps_doc()) == first
    changed = _plot(tmp_path / "c", apps_doc(redis_unix=250.0))
    assert "| redis | GET 64 B P1 | 2.51×" in changed[0]
    assert changed[1] != first[1]


def test_no_apps_section_without_apps_json(tmp_path: Path) -> None:
    shutil.copy(FIXTURE_RESULTS, tmp_path / "bench.json")
    write_report(load_results(tmp_path / "bench.json"), [], tmp_path, "bench.json", tmp_path)
    assert "## Real servers" not in (tmp_path / "REPORT.md").read_text()
    assert not (tmp_path / "apps-unix-tcp.png").exists()
    assert not (tmp_path / "apps-unix-tcp.png").exists()
