"""Charts and REPORT.md from the FIXTURE results: every chart is drawn, every figure in the
report comes from the data, and `fastsock plot` is a well-behaved command."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from fastsock.cli import main as fastsock_main
from fastsock.report import summary as S
from fastsock.report.plots import CHARTS, draw_all, latency_vs_load
from fastsock.report.report import render

EVERY_CHART = {
    "verdicts.png",
    "rtt-vs-size.png",
    "throughput-vs-size.png",
    "msgs-vs-concurrency.png",
    "unix-tcp-ratio.png",
    "unix-tcp-by-engine.png",
    "latency-spectrum.png",
    "latency-vs-load.png",
    "servers.png",
    "placement.png",
    "transports.png",
}


def png_info(path: Path) -> tuple[int, int, float]:
    """(width, height, dots per inch) from a PNG's IHDR and pHYs chunks."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    at = data.index(b"pHYs")
    per_metre = struct.unpack(">I", data[at + 4 : at + 8])[0]
    return width, height, per_metre * 0.0254


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list, dict]:
    from tests.bench.conftest import FIXTURE_RESULTS

    out = tmp_path_factory.mktemp("charts")
    doc = json.loads(FIXTURE_RESULTS.read_text())
    return out, draw_all(doc, out), doc


def test_every_chart_is_drawn(drawn) -> None:
    out, charts, _ = drawn
    assert len(CHARTS) == len(EVERY_CHART)
    assert {c.file for c in charts} == EVERY_CHART
    assert {p.name for p in out.iterdir()} == EVERY_CHART
    for chart in charts:
        width, height, dpi = png_info(out / chart.file)
        assert round(dpi) == 150, chart.file
        assert width >= 900 and height >= 600, chart.file
        assert chart.title and chart.shows


def test_verdicts_chart_draws_every_headline_finding_with_its_ci(tmp_path: Path) -> None:
    """One row per headline finding; an unbounded CI (too few trials) draws no infinite bar;
    nothing to draw draws nothing."""
    from fastsock import findings as F
    from fastsock.report.verdict_chart import draw

    rows = [
        F.finding("a", "q (x)", "UNIX", "TCP", "msgs/s", [2, 2.2, 2.1, 1.9], [1, 1, 1, 1]),
        F.finding("b", "q (y)", "UNIX", "TCP", "msgs/s", [1, 2], [1, 1]),  # no CI
    ]
    assert draw(rows, tmp_path, "v.png", "t") == "v.png"
    width, height, dpi = png_info(tmp_path / "v.png")
    assert round(dpi) == 150 and width > height
    assert draw([], tmp_path, "none.png", "t") is None
    assert not (tmp_path / "none.png").exists()


def test_chart_skipped_without_its_experiment(fixture_doc: dict, tmp_path: Path) -> None:
    fixture_doc["experiments"] = [e for e in fixture_doc["experiments"] if e["kind"] != "open"]
    assert latency_vs_load(fixture_doc, tmp_path) is None
    assert list(tmp_path.iterdir()) == []


def test_report_figures_come_from_the_data(drawn) -> None:
    from fastsock import findings as F

    _, charts, doc = drawn
    text = render(doc, charts)
    size_exp = next(e for e in doc["experiments"] if e["name"] == "size")
    by_id = {f["id"]: f for f in doc["findings"]}
    for size in (64, 1048576):
        r = S.paired_ratios(size_exp, "msgs_per_s", server="fastsock", size=size)
        f = by_id[f"size/fastsock/{size}B/32c/d1/unpinned/unix-vs-tcp/msgs"]
        assert (r.median, r.lo, r.hi) == (f["estimate"], f["ci_low"], f["ci_high"])
        # the verdict table's row: the question, the winner in bold, the ratio and its CI
        row = f"| {f['question']} | **UNIX is faster** than TCP 127.0.0.1 on messages/s | "
        assert row + f"{F.ratio_text(f)} | {f['n']} |" in text
    for chart in charts:
        assert f"]({chart.file})" in text
    assert "FIXTURE DATA" in text
    assert "FIXTURE CPU (invented data)" in text
    assert "repeats disagree" not in text
    # The fixture marks c-epoll's small-message runs client-bound; the caveats must say so.
    bound = sum(S.client_bound(r) for e in doc["experiments"] for r in e["runs"])
    assert bound > 0
    assert f"**{bound} of " in text


def test_report_changes_when_the_data_does(fixture_doc: dict) -> None:
    """No figure is typed in: doubling every UNIX msgs/s doubles the headline ratio."""
    size_exp = next(e for e in fixture_doc["experiments"] if e["name"] == "size")
    before = S.paired_ratios(size_exp, "msgs_per_s", server="fastsock", size=64)
    for run in size_exp["runs"]:
        if run["variant"]["transport"] == "unix":
            run["load"]["msgs_per_s"] *= 2
    after = S.paired_ratios(size_exp, "msgs_per_s", server="fastsock", size=64)
    assert after.median == pytest.approx(2 * before.median)
    text = render(fixture_doc, [])
    assert f"{after.median:.2f}× ({after.lo:.2f}–{after.hi:.2f})" in text
    assert f"{before.median:.2f}× ({before.lo:.2f}–{before.hi:.2f})" not in text


def test_fastsock_plot_default_out_is_the_json_folder(fixture_copy: Path) -> None:
    result = CliRunner().invoke(fastsock_main, ["plot", str(fixture_copy)])
    assert result.exit_code == 0, result.output
    written = {p.name for p in fixture_copy.parent.iterdir()}
    assert written == EVERY_CHART | {"REPORT.md", "bench.json"}
    assert "fastsock plot bench.json" in (fixture_copy.parent / "REPORT.md").read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such file"), ("{", "not JSON"), ('{"schema": "x"}', "not a fastsock.bench/1")],
)
def test_fastsock_plot_bad_input(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    result = CliRunner().invoke(fastsock_main, ["plot", str(path)])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_http_section_and_chart_from_http_json(tmp_path: Path) -> None:
    """With make bench-http's http.json beside bench.json, plot adds its chart and section."""
    import shutil

    from tests.bench.conftest import FIXTURE_RESULTS

    root = Path(__file__).resolve().parents[2]
    shutil.copy(FIXTURE_RESULTS, tmp_path / "bench.json")
    shutil.copy(root / "results" / "http.json", tmp_path / "http.json")
    result = CliRunner().invoke(fastsock_main, ["plot", str(tmp_path / "bench.json")])
    assert result.exit_code == 0, result.output
    report = (tmp_path / "REPORT.md").read_text()
    assert "## Static files over HTTP: fastsock vs nginx" in report
    assert "(http-vs-nginx.png)" in report
    assert (tmp_path / "http-vs-nginx.png").stat().st_size > 10_000
    assert "| fastsock/nginx | UNIX | 1 KiB |" in report


def test_spectrum_takes_latency_from_a_fastsock_load_experiment() -> None:
    """A size sweep driven by the C load client has no latency: the closed-loop spectrum panel
    must come from an experiment `fastsock load` measured (it once came out empty)."""
    from fastsock.report.plots import _closed_with_latency
    from tests.bench.conftest import FIXTURE_RESULTS

    doc = json.loads(FIXTURE_RESULTS.read_text())
    size = next(e for e in doc["experiments"] if e["kind"] == "closed" and e["sweep"] == "size")
    assert _closed_with_latency(doc) is size
    size["params"]["client"] = "c"
    chosen = _closed_with_latency(doc)
    assert chosen is not None and chosen is not size
    assert chosen["params"].get("client", "fastsock") == "fastsock"
