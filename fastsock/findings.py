"""Paired trials -> a *finding*: the ratio A ÷ B with a 95% bootstrap confidence interval and a
verdict. One module for the matrix, the report, ``fastsock ab`` and ``fastsock compare``.

The method (shared/design.md, "Statistics"):

- A and B are measured in *paired trials*: back to back, in a random order, many times. Each
  trial gives one log ratio ``ln(A_i / B_i)``; drift on a shared machine moves both sides of a
  pair and cancels out of it.
- The estimate is the geometric mean of the paired ratios (``exp`` of the mean log ratio); its
  95% confidence interval is a BCa bootstrap of that mean (``scipy.stats.bootstrap``), the
  percentile bootstrap where BCa is undefined, *expanded* for small samples (Hesterberg 2015,
  "What teachers should know about the bootstrap": a bootstrap interval is too narrow by about
  ``sqrt((n-1)/n) * z / t_(n-1)``; without the expansion an A/A comparison of 20 trials claimed
  a difference 7.7% of the time in our simulation instead of 5%).
- The verdict: ``equivalent`` when the whole CI lies within ±5% of 1 (a difference that small is
  below what a decision on these machines should hang on, even where the CI excludes 1);
  otherwise ``greater`` or ``less`` when the CI excludes 1; otherwise ``unclear``, and the
  finding says how small a difference the run could have detected (its CI's half-width).

A finding is a plain dict, the record shared/design.md fixes (``id``, ``question``, ``a``,
``b``, ``metric``, ``estimate``, ``ci_low``, ``ci_high``, ``level``, ``n``, ``verdict``) plus
``higher_is_better``, ``half_width``, ``log_ratios`` and free ``detail``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

LEVEL = 0.95
# |ratio - 1| below this for the whole CI: "equivalent".
EQUIVALENCE = 0.05
VERDICTS = ("greater", "less", "equivalent", "unclear")
# Bootstrap resamples: BCa's interval endpoints settle to ~0.1% by a few thousand.
RESAMPLES = 4999
# A fixed seed: the same trials give the same CI, run after run (the randomness that matters is
# the trials', not the resampling's).
SEED = 20261207
MIN_TRIALS = 3


def log_ratios(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """``ln(a_i / b_i)`` of paired values; pairs where either side is missing or not
    positive are dropped (a failed trial is no evidence either way)."""
    if len(a) != len(b):
        raise ValueError(f"paired values need equal lengths ({len(a)} vs {len(b)})")
    out = []
    for x, y in zip(a, b, strict=True):
        if x is None or y is None:
            continue
        x, y = float(x), float(y)
        if x > 0 and y > 0 and math.isfinite(x) and math.isfinite(y):
            out.append(math.log(x / y))
    return np.asarray(out, dtype=float)


def mean_ci(
    values: np.ndarray, level: float = LEVEL, seed: int = SEED
) -> tuple[float, float, float]:
    """(mean, ci_low, ci_high) of ``values`` by a BCa bootstrap of the mean.

    Fewer than ``MIN_TRIALS`` values give an infinite interval (no claim can be made); values
    that are all equal give a zero-width interval (the bootstrap has nothing to resample).
    """
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return math.nan, -math.inf, math.inf
    mean = float(values.mean())
    if n < MIN_TRIALS:
        return mean, -math.inf, math.inf
    if float(np.ptp(values)) == 0.0:
        return mean, mean, mean
    from scipy import stats  # a second to import: only where a CI is computed
    from scipy.stats import norm, t

    lo = hi = math.nan
    for method in ("BCa", "percentile"):
        res = stats.bootstrap(
            (values,),
            np.mean,
            confidence_level=level,
            n_resamples=RESAMPLES,
            method=method,
            vectorized=True,
            rng=np.random.default_rng(seed),
        )
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if math.isfinite(lo) and math.isfinite(hi):
            break
    q = 0.5 + level / 2
    widen = math.sqrt(n / (n - 1)) * float(t.ppf(q, n - 1)) / float(norm.ppf(q))
    return mean, mean - (mean - lo) * widen, mean + (hi - mean) * widen


def verdict(ci_low: float, ci_high: float, margin: float = EQUIVALENCE) -> str:
    """The verdict for a ratio's CI (see the module's docstring)."""
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return "unclear"
    if ci_low >= 1 - margin and ci_high <= 1 + margin:
        return "equivalent"
    if ci_low > 1:
        return "greater"
    if ci_high < 1:
        return "less"
    return "unclear"


def half_width(estimate: float, ci_low: float, ci_high: float) -> float:
    """The CI's larger half-width as a share of the estimate (0.08: ±8%): how small a
    difference this run could tell from none."""
    if not (estimate > 0 and math.isfinite(ci_low) and math.isfinite(ci_high)):
        return math.inf
    return max(ci_high / estimate - 1, 1 - ci_low / estimate)


def finding(
    id: str,
    question: str,
    a: str,
    b: str,
    metric: str,
    a_values: Sequence[float | None],
    b_values: Sequence[float | None],
    *,
    higher_is_better: bool = True,
    level: float = LEVEL,
    **detail: object,
) -> dict:
    """One finding from paired per-trial values of A and B (same length, trial i of A paired
    with trial i of B). ``detail`` is stored as is under ``detail``."""
    logs = log_ratios(a_values, b_values)
    mean, lo, hi = mean_ci(logs, level)
    est = math.exp(mean) if math.isfinite(mean) else math.nan
    ci_low, ci_high = _exp(lo), _exp(hi)
    return {
        "id": id,
        "question": question,
        "a": a,
        "b": b,
        "metric": metric,
        "higher_is_better": higher_is_better,
        "estimate": _num(est),
        "ci_low": _num(ci_low),
        "ci_high": _num(ci_high),
        "level": level,
        "n": int(len(logs)),
        "verdict": verdict(ci_low, ci_high),
        "half_width": _num(half_width(est, ci_low, ci_high)),
        "log_ratios": [round(float(x), 6) for x in logs],
        "detail": detail,
    }


def _exp(x: float) -> float:
    if x == -math.inf:
        return 0.0
    return math.exp(x) if math.isfinite(x) else math.inf


def _num(x: float) -> float | None:
    """JSON has no inf or NaN: an unbounded or undefined figure is ``null``."""
    return round(x, 6) if math.isfinite(x) else None


def better(f: dict) -> str | None:
    """Which side the finding says is better, "a" or "b", or None (equivalent, unclear)."""
    if f["verdict"] not in ("greater", "less"):
        return None
    a_higher = f["verdict"] == "greater"
    return "a" if a_higher == f["higher_is_better"] else "b"


def ratio_text(f: dict) -> str:
    """``1.23× (1.15–1.31)``, or ``1.23× (no CI: 2 trials)``."""
    est, lo, hi = f.get("estimate"), f.get("ci_low"), f.get("ci_high")
    if est is None:
        return "no estimate (no valid trials)"
    if lo is None or hi is None:
        return f"{est:.2f}× (no CI: {f['n']} trials)"
    return f"{est:.2f}× ({lo:.2f}–{hi:.2f})"


def answer(f: dict) -> str:
    """The finding in words: who is faster on which metric, or that the run cannot tell and
    how small a difference it could have told. ``detail.words`` may give the sentence for a
    verdict (a finding whose A and B are not two things that can be faster)."""
    v, a, b, metric = f["verdict"], f["a"], f["b"], f["metric"]
    words = (f.get("detail") or {}).get("words") or {}
    if v in words:  # a finding whose "greater" is no speed (a ratio of ratios) says its own
        return words[v]
    if v == "equivalent":
        return f"{a} and {b} are equivalent on {metric} (within ±{EQUIVALENCE:.0%})"
    side = better(f)
    if side is not None:
        winner, loser = (a, b) if side == "a" else (b, a)
        return f"{winner} is faster than {loser} on {metric}"
    hw = f.get("half_width")
    can = f"about ±{hw:.0%}" if hw is not None else "nothing (too few trials)"
    return f"no clear difference on {metric}; this run could have detected {can}"


def compare(first: list[dict], second: list[dict]) -> list[dict]:
    """Per finding id present in both lists: both estimates and CIs, the ratio between the
    runs (second ÷ first), and whether they agree: the same verdict and overlapping CIs.
    ``contradiction`` marks the case that must never happen: greater in one, less in the
    other. ``inside`` says whether each run's estimate lies inside the other's CI."""
    by_id = {f["id"]: f for f in second}
    out = []
    for f in first:
        g = by_id.get(f["id"])
        if g is None:
            continue
        overlap = _overlap(f, g)
        verdicts = {f["verdict"], g["verdict"]}
        ratio = g["estimate"] / f["estimate"] if f.get("estimate") and g.get("estimate") else None
        out.append(
            {
                "id": f["id"],
                "question": f["question"],
                "first": _brief(f),
                "second": _brief(g),
                "ratio": _num(ratio) if ratio is not None else None,
                "same_verdict": f["verdict"] == g["verdict"],
                "ci_overlap": overlap,
                "agree": f["verdict"] == g["verdict"] and overlap,
                "contradiction": verdicts == {"greater", "less"},
                "first_inside_second": _inside(f.get("estimate"), g),
                "second_inside_first": _inside(g.get("estimate"), f),
            }
        )
    return out


def _brief(f: dict) -> dict:
    keys = ("estimate", "ci_low", "ci_high", "n", "verdict", "half_width")
    return {k: f.get(k) for k in keys}


def _bounds(f: dict) -> tuple[float, float]:
    lo, hi = f.get("ci_low"), f.get("ci_high")
    return (0.0 if lo is None else lo), (math.inf if hi is None else hi)


def _overlap(f: dict, g: dict) -> bool:
    (lo1, hi1), (lo2, hi2) = _bounds(f), _bounds(g)
    return lo1 <= hi2 and lo2 <= hi1


def _inside(x: float | None, f: dict) -> bool:
    if x is None:
        return False
    lo, hi = _bounds(f)
    return lo <= x <= hi


def agreement(rows: list[dict], first: list[dict], second: list[dict]) -> dict:
    """Summary of :func:`compare`'s rows: how far two runs' findings agree."""
    n = len(rows)
    inside = sum(r["first_inside_second"] for r in rows) + sum(
        r["second_inside_first"] for r in rows
    )
    widths = [f["half_width"] for f in (*first, *second) if f.get("half_width") is not None]
    return {
        "findings": n,
        "same_verdict": sum(r["same_verdict"] for r in rows),
        "agree": sum(r["agree"] for r in rows),
        "contradictions": sum(r["contradiction"] for r in rows),
        # each run's estimate inside the other's CI, over both directions
        "inside_share": inside / (2 * n) if n else None,
        "same_verdict_share": sum(r["same_verdict"] for r in rows) / n if n else None,
        "median_half_width": float(np.median(widths)) if widths else None,
        "only_first": sorted({f["id"] for f in first} - {f["id"] for f in second}),
        "only_second": sorted({f["id"] for f in second} - {f["id"] for f in first}),
    }
