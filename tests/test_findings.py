"""The statistics of a finding, on synthetic data whose truth is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastsock import findings as F

# Simulated experiments per property: enough that the coverage estimate's own standard error
# is ~1.2% (sqrt(0.95 * 0.05 / 300)); the seeds are fixed, so the test cannot flake.
SIMULATIONS = 300


def _experiment(rng: np.random.Generator, true_ratio: float, n: int, sd: float) -> dict:
    """n paired trials of A = true_ratio x B, each side with multiplicative noise and a shared
    drift that pairing must cancel."""
    drift = np.exp(rng.normal(0, 0.3, n))  # machine drift: hits both sides of a pair
    b = 1000 * drift * np.exp(rng.normal(0, sd, n))
    a = 1000 * true_ratio * drift * np.exp(rng.normal(0, sd, n))
    return F.finding("sim", "q", "A", "B", "msgs/s", a, b)


@pytest.mark.timeout(120)
def test_ci_covers_the_truth_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(1)
    truth = 1.3
    covered = 0
    for _ in range(SIMULATIONS):
        f = _experiment(rng, truth, n=20, sd=0.12)
        covered += f["ci_low"] <= truth <= f["ci_high"]
    # ~95.8% in 1,000 simulations; a broken interval (unexpanded BCa: 93.6%) lands near the edge.
    assert 0.91 <= covered / SIMULATIONS <= 0.99, covered


@pytest.mark.timeout(120)
def test_an_a_a_comparison_claims_a_difference_at_most_5_percent_of_the_time() -> None:
    rng = np.random.default_rng(2)
    claims = 0
    for _ in range(SIMULATIONS):
        f = _experiment(rng, 1.0, n=20, sd=0.12)
        claims += f["verdict"] in ("greater", "less")
    assert claims / SIMULATIONS <= 0.08, claims  # 5% nominal, with the simulation's own error


@pytest.mark.timeout(120)
def test_a_real_difference_is_found_and_a_tiny_one_is_called_equivalent() -> None:
    rng = np.random.default_rng(3)
    found = [_experiment(rng, 1.5, 20, 0.12)["verdict"] for _ in range(50)]
    assert found.count("greater") == 50
    slower = [_experiment(rng, 0.7, 20, 0.12)["verdict"] for _ in range(50)]
    assert slower.count("less") == 50
    # 1% apart with little noise: the CI lies inside ±5%.
    tiny = [_experiment(rng, 1.01, 40, 0.02)["verdict"] for _ in range(50)]
    assert tiny.count("equivalent") >= 48


def test_verdict_rules() -> None:
    assert F.verdict(1.06, 1.2) == "greater"
    assert F.verdict(0.5, 0.9) == "less"
    assert F.verdict(0.97, 1.04) == "equivalent"
    assert F.verdict(1.01, 1.04) == "equivalent"  # excludes 1, but within ±5%: no decision
    assert F.verdict(0.9, 1.2) == "unclear"
    assert F.verdict(0.0, math.inf) == "unclear"


def test_estimate_is_the_geometric_mean_of_paired_ratios() -> None:
    f = F.finding("x", "q", "A", "B", "m", [2, 8, 4], [1, 2, 2])
    assert f["estimate"] == pytest.approx((2 * 4 * 2) ** (1 / 3), rel=1e-6)
    assert f["n"] == 3
    assert f["ci_low"] <= f["estimate"] <= f["ci_high"]


def test_failed_trials_are_dropped_in_pairs_and_too_few_trials_make_no_claim() -> None:
    f = F.finding("x", "q", "A", "B", "m", [2, None, 0, 3], [1, 1, 1, None])
    assert f["n"] == 1
    assert f["verdict"] == "unclear" and f["ci_high"] is None
    with pytest.raises(ValueError):
        F.log_ratios([1, 2], [1])


def test_identical_ratios_give_a_zero_width_interval() -> None:
    f = F.finding("x", "q", "A", "B", "m", [2, 4, 6, 8], [1, 2, 3, 4])
    assert f["estimate"] == f["ci_low"] == f["ci_high"] == 2.0
    assert f["verdict"] == "greater"


def test_words_name_the_winner_by_direction() -> None:
    lat = F.finding("x", "q", "unix", "tcp", "p50 latency", [10] * 5, [20, 21, 19, 20, 22])
    lat["higher_is_better"] = False
    assert F.better(lat) == "a"
    assert F.answer(lat).startswith("unix is faster than tcp")
    unclear = {"verdict": "unclear", "a": "A", "b": "B", "metric": "m", "half_width": 0.12}
    assert "±12%" in F.answer(unclear)


def _f(id_: str, est: float, lo: float, hi: float) -> dict:
    return {
        "id": id_,
        "question": "q",
        "estimate": est,
        "ci_low": lo,
        "ci_high": hi,
        "n": 10,
        "verdict": F.verdict(lo, hi),
        "half_width": F.half_width(est, lo, hi),
    }


def test_compare_agreeing_and_contradicting_runs() -> None:
    first = [_f("a", 1.5, 1.4, 1.6), _f("b", 1.2, 1.1, 1.3), _f("only-first", 1, 0.9, 1.1)]
    second = [_f("a", 1.45, 1.35, 1.55), _f("b", 0.8, 0.7, 0.9)]
    rows = {r["id"]: r for r in F.compare(first, second)}
    assert set(rows) == {"a", "b"}
    assert rows["a"]["agree"] and rows["a"]["first_inside_second"]
    assert rows["a"]["ratio"] == pytest.approx(1.45 / 1.5, rel=1e-5)
    assert not rows["b"]["agree"] and rows["b"]["contradiction"]
    assert not rows["b"]["ci_overlap"]


def test_both_results_schemas_describe_the_same_finding_record() -> None:
    """bench.json and fastsock ab's JSON each define the finding record; a record from
    fastsock.findings validates against both, and neither drops a field the other requires."""
    import json
    from importlib import resources

    from jsonschema import Draft202012Validator

    defs = {}
    for pkg in ("fastsock.report", "fastsock.ab"):
        doc = json.loads(resources.files(pkg).joinpath("schema.json").read_text("utf-8"))
        defs[pkg] = doc["$defs"]["finding"]
    bench, ab = defs["fastsock.report"], defs["fastsock.ab"]
    assert set(bench["required"]) <= set(ab["required"])
    assert set(bench["properties"]) == set(ab["properties"])
    f = F.finding("ab-throughput", "q", "A", "B", "msgs/s", [2, 2.1, 1.9], [1, 1, 1])
    for d in (bench, ab):
        assert list(Draft202012Validator(d).iter_errors(f)) == []
