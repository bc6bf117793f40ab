"""make bench-replicate's arithmetic and its REPORT.md section, on the fixture's results."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.matrix.replicate import SCHEMA, summarize
from fastsock.cli import main as fastsock_main
from fastsock.report.verdicts import matrix_findings


def _halved_tcp(doc: dict) -> dict:
    """A second "run" in which TCP is half as fast in the size sweep: its UNIX / TCP verdicts
    stay, its estimates double (outside the first run's CIs)."""
    other = copy.deepcopy(doc)
    for exp in other["experiments"]:
        if exp["name"] == "size":
            for r in exp["runs"]:
                if r["variant"]["transport"] == "tcp":
                    r["load"]["msgs_per_s"] /= 2
    other["findings"] = matrix_findings(other)
    return other


@pytest.mark.timeout(120)
def test_identical_runs_agree_fully_and_a_changed_one_does_not(fixture_doc: dict) -> None:
    same = summarize([fixture_doc, copy.deepcopy(fixture_doc)], [100.0, 101.0])
    t = same["totals"]
    assert t["same_verdict_share"] == 1.0 and t["inside_share"] == 1.0
    assert t["contradictions"] == 0 and t["aa_claims"] == 0
    assert t["findings_min"] == len(fixture_doc["findings"])
    assert len(same["runs"][0]["aa"]) == 4  # fastsock vs its twin: 2 sizes x 2 transports
    changed = summarize([fixture_doc, _halved_tcp(fixture_doc)], [100.0, 101.0])
    (pair,) = changed["pairs"]
    size_ids = [f["id"] for f in fixture_doc["findings"] if f["id"].startswith("size/")]
    assert pair["inside_share"] < 1.0
    row = next(r for r in changed["per_finding"] if r["id"] == size_ids[0])
    assert row["runs"][1]["estimate"] == pytest.approx(2 * row["runs"][0]["estimate"], rel=1e-6)


@pytest.mark.timeout(120)
def test_report_shows_the_section_when_replicate_json_is_beside(
    fixture_copy: Path, fixture_doc: dict
) -> None:
    summary = summarize([fixture_doc, fixture_doc], [100.0, 100.0])
    meta = dict(fixture_doc["metadata"])
    rep = {"schema": SCHEMA, "profile": "quick", "metadata": meta, "cpu_pressure": 0.02, **summary}
    (fixture_copy.parent / "replicate.json").write_text(json.dumps(rep))
    result = CliRunner().invoke(fastsock_main, ["plot", str(fixture_copy)])
    assert result.exit_code == 0, result.output
    text = (fixture_copy.parent / "REPORT.md").read_text()
    assert "## Does a second run agree?" in text
    assert "- Contradictions (greater in one run, less in another): **0**." in text
