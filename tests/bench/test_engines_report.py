"""REPORT.md's io_uring section and its chart: figures from the data, a skip said out loud,
and a byte-identical redraw from the same JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from fastsock.cli import main as fastsock_main
from fastsock.report import summary as S
from fastsock.report.engines import TITLE, engine_findings, engine_ratios, findings, section
from fastsock.report.report import render
from fastsock.report.summary import ratio_text
from tests.bench.conftest import FIXTURE_RESULTS

CHART = "unix-tcp-by-engine.png"


def _size(doc: dict) -> dict:
    return next(e for e in doc["experiments"] if e["name"] == "size")


def _plot(folder: Path, doc: dict) -> tuple[str, bytes]:
    folder.mkdir()
    (folder / "bench.json").write_text(json.dumps(doc))
    result = CliRunner().invoke(fastsock_main, ["plot", str(folder / "bench.json")])
    assert result.exit_code == 0, result.output
    return (folder / "REPORT.md").read_text(), (folder / CHART).read_bytes()


def test_section_figures_come_from_the_size_sweep(fixture_doc: dict) -> None:
    text = render(fixture_doc, [])
    assert f"## {TITLE}" in text
    exp = _size(fixture_doc)
    for size in (64, 1048576):
        e = S.paired_ratios(exp, "msgs_per_s", server="fastsock", size=size)
        u = S.paired_ratios(exp, "msgs_per_s", server="fastsock-uring", size=size)
        g = S.paired_ratios(exp, "msgs_per_s", "fastsock-uring", "fastsock", "server", size=size,
                            transport="tcp")  # fmt: skip
        assert f"| {S.fmt_size(size)} | {ratio_text(e)} | {ratio_text(u)} |" in text
        assert f"| {ratio_text(g)} |" in text
    # The fixture's invented io_uring engine loses less over TCP at small sizes: at 64 B the
    # ratio of the two engines' UNIX ÷ TCP must come out below 1 with a CI that says so; at
    # 1 MiB (same invented cost) no change may be claimed.
    found = engine_findings(fixture_doc)
    assert found[64]["verdict"] == "less" and found[64]["ci_high"] < 1
    assert found[1048576]["verdict"] in ("unclear", "equivalent")
    assert "64 B: UNIX ÷ TCP" in text and "UNIX ÷ TCP was **smaller** under io_uring" in text
    assert "1 MiB: UNIX ÷ TCP" in text and "no change shown" in text
    assert any("changed it at 2 (64 B, 4 KiB)" in f for f in findings(fixture_doc))


def test_section_follows_the_data(fixture_doc: dict) -> None:
    """Halving the io_uring engine's TCP rate doubles its UNIX ÷ TCP ratio in the text."""
    before = engine_ratios(_size(fixture_doc))[64]["fastsock-uring"]
    for run in _size(fixture_doc)["runs"]:
        v = run["variant"]
        if v["server"] == "fastsock-uring" and v["transport"] == "tcp":
            run["load"]["msgs_per_s"] /= 2
    after = engine_ratios(_size(fixture_doc))[64]["fastsock-uring"]
    assert abs(after.median - 2 * before.median) < 1e-9
    text = "\n".join(section(fixture_doc, []))
    assert ratio_text(after) in text and ratio_text(before) not in text


def test_headline_when_no_size_moved(fixture_doc: dict) -> None:
    """Make the io_uring runs copies of the epoll ones: identical ratios, nothing moved."""
    exp = _size(fixture_doc)
    epoll = {(r["repeat"], r["variant"]["transport"], r["variant"]["size"]): r for r in exp["runs"]
             if r["variant"]["server"] == "fastsock"}  # fmt: skip
    for r in exp["runs"]:
        v = r["variant"]
        if v["server"] == "fastsock-uring":
            r["load"] = dict(epoll[(r["repeat"], v["transport"], v["size"])]["load"])
    from fastsock.report.verdicts import matrix_findings

    fixture_doc["findings"] = matrix_findings(fixture_doc)  # recomputed from the changed runs
    (line,) = findings(fixture_doc)
    assert "changed it at none (no change this run can show)" in line


def test_without_io_uring_the_section_says_why(fixture_doc: dict) -> None:
    """As `bench.matrix.run` records it where the engine's probe fails: no runs, a skip reason."""
    exp = _size(fixture_doc)
    exp["runs"] = [r for r in exp["runs"] if r["variant"]["server"] != "fastsock-uring"]
    exp["params"]["servers"].remove("fastsock-uring")
    reason = "io_uring is disabled (kernel.io_uring_disabled = 2)"
    exp["skipped"].append({"what": "server fastsock-uring", "reason": reason})
    text = render(fixture_doc, [])
    said = (
        f"**Not answered by this run:** the io_uring engine was skipped on this machine ({reason})"
    )
    assert said in text
    assert "| size | UNIX ÷ TCP, epoll engine |" not in text
    assert f"was not measured here ({reason})" in text  # the verdicts say it too


def test_chart_redraws_byte_identically_and_follows_the_data(tmp_path: Path) -> None:
    doc = json.loads(FIXTURE_RESULTS.read_text())
    first = _plot(tmp_path / "a", doc)
    assert f"]({CHART})" in first[0]
    assert _plot(tmp_path / "b", json.loads(FIXTURE_RESULTS.read_text())) == first
    for run in _size(doc)["runs"]:
        if run["variant"]["server"] == "fastsock-uring" and run["variant"]["transport"] == "tcp":
            run["load"]["msgs_per_s"] /= 2
    changed = _plot(tmp_path / "c", doc)
    assert changed[1] != first[1] and changed[0] != first[0]
    shutil.rmtree(tmp_path / "c")
