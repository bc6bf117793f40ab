"""The trial runner without sockets (``measure`` replaced): the order is random, balanced and
paired; the first trial with errors ends the run naming trial and side; the findings, the JSON
(against its schema), the text and the plot are built from the per-trial values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fastsock.ab import report
from fastsock.ab import run as ab_run
from fastsock.ab.plot import plot
from fastsock.findings import VERDICTS
from fastsock.report.results import validate
from fastsock.trials import ab_order
from tests.ab.conftest import plan, record


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, float, float]]:
    """Every run as (endpoint, duration, warm-up); A serves 2x B's msgs/s at 0.5x its latency."""
    made: list[tuple[str, float, float]] = []

    def fake(config) -> dict:
        made.append((str(config.endpoint), config.duration, config.warmup))
        pair = (len(made) - 1) // 2  # the warm-ups, then each trial's two runs
        jitter = 1 + 0.03 * ((pair * 7919) % 5 - 2)  # deterministic noise, both sides alike
        if config.endpoint.is_unix:
            return record(2000 * jitter, 50 * jitter, 200 * jitter)
        return record(1000 * jitter, 100 * jitter, 400 * jitter)

    monkeypatch.setattr(ab_run, "measure", fake)
    monkeypatch.setattr(ab_run, "check_reachable", lambda plan: plan)
    return made


def test_trials_follow_the_random_balanced_paired_order(calls) -> None:
    p = plan(trials=10, seed=123)
    ticks = []
    out = ab_run.run_ab(p, lambda: ticks.append(1))
    assert out.error is None and len(out.trials) == 10
    assert len(ticks) == 2 + 2 * 10
    a, b = str(p.a), str(p.b)
    # The warm-up first, on each endpoint, for --warmup seconds with no ramp of its own...
    assert calls[:2] == [(a, 0.1, 0.0), (b, 0.1, 0.0)]
    # ...then each trial's two runs back to back (paired), in ab_order's order for the seed.
    expected = ab_order(10, 123)
    assert [tuple(t["order"]) for t in out.trials] == expected
    sides = {a: "a", b: "b"}
    ran = [sides[c[0]] for c in calls[2:]]
    assert [tuple(ran[i : i + 2]) for i in range(0, 20, 2)] == expected
    assert all(c[1:] == (0.1, ab_run.TRIAL_WARMUP_S) for c in calls[2:])
    # Balanced: A first in half the trials; random: the seed changes the order.
    assert sum(o[0] == "a" for o in expected) == 5
    assert len({tuple(ab_order(10, s)) for s in range(20)}) > 10


def test_findings_are_the_shared_records_with_a_verdict_in_words(calls) -> None:
    out = ab_run.run_ab(plan())
    found = report.findings(out)
    assert [f["id"] for f in found] == ["ab-throughput", "ab-p50", "ab-p99"]
    thr, p50, p99 = found
    assert thr["estimate"] == pytest.approx(2.0) and thr["verdict"] == "greater"
    assert p50["estimate"] == pytest.approx(0.5) and p50["verdict"] == "less"
    assert not p50["higher_is_better"] and thr["higher_is_better"]
    for f in found:
        assert f["n"] == 6 and f["level"] == 0.95 and f["verdict"] in VERDICTS
        assert f["a"] == "A (unix:/tmp/a.sock)" and f["b"] == "B (tcp://127.0.0.1:8000)"
    text = report.summary(out, found)
    assert "A served 2.00× (2.00–2.00) the msgs/s of B: A is better" in text
    assert "A's p50 latency was 0.50× (0.50–0.50) B's: A is faster" in text
    assert "pressure median 0.02" in text


def test_unclear_says_how_small_a_difference_it_could_detect() -> None:
    f = {
        "higher_is_better": False,
        "metric": "p99 latency (µs)",
        "estimate": 1.02,
        "ci_low": 0.9,
        "ci_high": 1.15,
        "n": 20,
        "verdict": "unclear",
        "half_width": 0.127,
    }
    line = report.verdict_line(f, plan())
    assert line == (
        "A's p99 latency was 1.02× (0.90–1.15) B's: no clear difference; "
        "this run could have detected about ±13%"
    )
    f.update(estimate=1.01, ci_low=0.98, ci_high=1.03, verdict="equivalent")
    assert report.verdict_line(f, plan()).endswith("equivalent (the whole CI lies within ±5%)")


def test_a_trial_with_errors_ends_the_run_naming_trial_and_side(monkeypatch) -> None:
    b_runs = []

    def fake(config) -> dict:
        if not config.endpoint.is_unix:
            b_runs.append(1)  # B's warm-up, then one per trial: the 4th is trial 3's
        return record(errors=2 if len(b_runs) == 4 and not config.endpoint.is_unix else 0)

    monkeypatch.setattr(ab_run, "measure", fake)
    monkeypatch.setattr(ab_run, "check_reachable", lambda plan: plan)
    monkeypatch.setattr(ab_run, "_still_there", lambda plan, side: "")
    out = ab_run.run_ab(plan(seed=5))
    assert out.error is not None
    assert (out.error.trial, out.error.side) == (3, "b")
    assert len(out.trials) == 2
    assert out.error.text(6) == (
        "trial 3 of 6, side B (tcp://127.0.0.1:8000): 2 error(s) (mismatch 2): "
        "conn 3: mismatch at byte 17"
    )
    doc = report.document(out, report.findings(out))
    assert doc["status"] == "error" and doc["error"]["trial"] == 3
    assert validate(doc, report.schema()) == []


def test_a_run_with_no_answers_is_an_error(monkeypatch) -> None:
    monkeypatch.setattr(ab_run, "measure", lambda config: record(0.0, None, None) | {"messages": 0})
    monkeypatch.setattr(ab_run, "check_reachable", lambda plan: plan)
    monkeypatch.setattr(ab_run, "_still_there", lambda plan, side: "")
    out = ab_run.run_ab(plan(warmup=0))
    assert out.error is not None and out.error.trial == 1
    assert "no answer at all in 0.1 s" in out.error.message


def test_the_json_document_validates_and_the_schema_bites(calls) -> None:
    out = ab_run.run_ab(plan())
    doc = json.loads(json.dumps(report.document(out, report.findings(out), "fastsock ab x y")))
    s = report.schema()
    assert validate(doc, s) == []
    assert doc["params"]["seed"] == 7 and doc["params"]["trials"] == 6
    assert len(doc["trials"]) == 6 and set(doc["warmup"]) == {"a", "b"}
    doc["findings"][0]["verdict"] = "maybe"
    doc["trials"][0]["order"] = ["a", "a"]
    doc["trials"][1]["a"].pop("p50_us")
    errors = validate(doc, s)
    assert any("findings[0].verdict" in e for e in errors)
    assert any("trials[0].order" in e for e in errors)
    assert any("trials[1].a" in e and "p50_us" in e for e in errors)


def test_plot_writes_a_png(calls, tmp_path: Path) -> None:
    out = ab_run.run_ab(plan())
    target = tmp_path / "ab.png"
    plot(out, report.findings(out), str(target))
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
