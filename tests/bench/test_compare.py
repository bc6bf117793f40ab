"""`fastsock compare`: two runs' findings side by side, on fixtures that agree and that do not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fastsock import findings as F
from fastsock.cli import main as fastsock_main


def _run(path: Path, ratios: dict[str, float], seed: int) -> Path:
    """A results file whose findings come from 12 paired trials at the given true ratios."""
    rng = np.random.default_rng(seed)
    found = []
    for name, truth in ratios.items():
        b = 1000 * np.exp(rng.normal(0, 0.05, 12))
        a = b * truth * np.exp(rng.normal(0, 0.03, 12))
        found.append(F.finding(name, f"question {name}", "UNIX", "TCP", "messages/s", a, b))
    path.write_text(json.dumps({"schema": "fastsock.bench/1", "findings": found}))
    return path


def _compare(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(fastsock_main, ["compare", *args])
    return result.exit_code, result.output


def test_agreeing_runs(tmp_path: Path) -> None:
    truth = {"x": 1.8, "y": 1.0, "z": 0.6}
    a = _run(tmp_path / "a.json", truth, 1)
    b = _run(tmp_path / "b.json", truth, 2)
    code, out = _compare(str(a), str(b), "--json", str(tmp_path / "c.json"))
    assert code == 0, out
    doc = json.loads((tmp_path / "c.json").read_text())
    assert doc["summary"]["findings"] == 3
    assert doc["summary"]["contradictions"] == 0
    assert all(r["agree"] for r in doc["rows"])
    assert "3 findings in both: 3 agree" in out


def test_disagreeing_runs_are_named(tmp_path: Path) -> None:
    a = _run(tmp_path / "a.json", {"x": 1.8, "y": 1.3, "only-a": 1.0}, 1)
    b = _run(tmp_path / "b.json", {"x": 1.8, "y": 0.7, "only-b": 1.0}, 2)
    code, out = _compare(str(a), str(b), "--json", "-")
    assert code == 0
    doc = json.loads(out)
    rows = {r["id"]: r for r in doc["rows"]}
    assert rows["x"]["agree"] and not rows["y"]["agree"]
    assert rows["y"]["contradiction"]
    assert rows["y"]["ratio"] == pytest.approx(0.7 / 1.3, rel=0.1)
    assert doc["summary"]["only_first"] == ["only-a"]
    assert doc["summary"]["only_second"] == ["only-b"]
    code, text = _compare(str(a), str(b))
    assert "CONTRADICT" in text and "1 contradict" in text


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such file"), ("{", "not JSON"), ('{"schema": "x"}', "no findings list")],
)
def test_unreadable_input_is_one_line_and_exit_2(
    tmp_path: Path, content: str | None, message: str
) -> None:
    good = _run(tmp_path / "good.json", {"x": 1.5}, 1)
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    code, out = _compare(str(good), str(bad))
    assert code == 2
    assert message in out and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1
