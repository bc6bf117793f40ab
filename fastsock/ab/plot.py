"""``fastsock ab --plot FILE``: per metric, the trials' values of A and B, and the paired ratios
with the estimate, its 95% CI and the ±5% equivalence band (matplotlib, Agg, PNG at 150 dpi)."""

from __future__ import annotations

import math

from fastsock.ab.report import METRICS, unit, workload_text
from fastsock.ab.run import AbRun
from fastsock.findings import EQUIVALENCE, ratio_text

DPI = 150
COLOURS = {"a": "tab:blue", "b": "tab:orange"}


def plot(run: AbRun, found: list[dict], path: str) -> None:
    """Write the chart of ``run`` and its findings (one per metric, in METRICS' order)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    plan = run.plan
    fig, axes = plt.subplots(len(METRICS), 2, figsize=(11, 3.2 * len(METRICS)), squeeze=False)
    trials = [t["trial"] for t in run.trials]
    for row, ((_, key, words, _), f) in enumerate(zip(METRICS, found, strict=True)):
        left, right = axes[row]
        ylabel = unit(plan) if key == "msgs_per_s" else f"{words} (µs)"
        for side in ("a", "b"):
            values = [math.nan if v is None else v for v in run.values(side, key)]
            left.plot(trials, values, "o-", ms=4, lw=1, color=COLOURS[side], label=plan.label(side))
        left.xaxis.set_major_locator(MaxNLocator(integer=True))
        left.set_ylabel(ylabel)
        left.set_title(f"{words}: each trial", fontsize=10)
        left.set_ylim(bottom=0)
        left.grid(alpha=0.3)
        left.legend(fontsize=8, loc="best")

        ratios = [math.exp(x) for x in f["log_ratios"]]
        right.plot(range(1, len(ratios) + 1), ratios, "o", ms=4, color="grey", label="trial A ÷ B")
        right.axhline(1.0, color="black", lw=0.8)
        right.axhspan(1 - EQUIVALENCE, 1 + EQUIVALENCE, color="green", alpha=0.08, label="±5%")
        if f["estimate"] is not None:
            right.axhline(f["estimate"], color="tab:red", lw=1.5, label="estimate")
        if f["ci_low"] is not None and f["ci_high"] is not None:
            right.axhspan(f["ci_low"], f["ci_high"], color="tab:red", alpha=0.15, label="95% CI")
        # Ratios are multiplicative (the estimate is a geometric mean): 2x and 0.5x lie alike.
        right.set_yscale("log")
        right.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        right.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        right.yaxis.set_minor_formatter(NullFormatter())
        right.tick_params(axis="y", which="minor", labelsize=7)
        right.xaxis.set_major_locator(MaxNLocator(integer=True))
        right.set_ylabel(f"A ÷ B ({words}, log scale)")
        right.set_title(f"{ratio_text(f)}: {f['verdict']}", fontsize=10)
        right.grid(alpha=0.3)
        right.legend(fontsize=8, loc="best")
    axes[-1][0].set_xlabel("trial")
    axes[-1][1].set_xlabel("paired trial (pairs with both values)")
    fig.suptitle(
        f"fastsock ab: A {plan.text('a')} vs B {plan.text('b')}\n"
        f"{workload_text(plan)}; {len(run.trials)} trials x {plan.trial_s:g} s",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
