"""The verdicts chart: every headline finding's ratio with its 95% CI, one row each (a forest
plot), the ±5% band of "equivalent" shaded and each row coloured by its verdict."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator  # noqa: E402

from fastsock import findings as F  # noqa: E402
from fastsock.report import verdicts as V  # noqa: E402
from fastsock.report.figure import Chart, finish  # noqa: E402

VERDICT_COLORS = {
    "greater": "tab:blue",
    "less": "tab:orange",
    "equivalent": "tab:green",
    "unclear": "0.55",
}
TICKS = [0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 10, 20]
SECTION = "verdicts"
FILE = "verdicts.png"


def label(f: dict) -> str:
    """'UNIX ÷ TCP 127.0.0.1, messages/s — fastsock (epoll), 64 B, 32 conns, 1 in flight'."""
    where = re.search(r"\(([^()]*(?:\([^()]*\)[^()]*)*)\)\s*$", f["question"])
    tail = f" — {where.group(1)}" if where else ""
    return f"{f['a']} ÷ {f['b']}, {f['metric']}{tail}"


def draw(findings: list[dict], out: Path, name: str, title: str) -> str | None:
    """Draw the findings (top to bottom in their order) into ``out/name``; None if there are
    none with an estimate."""
    rows = [f for f in findings if f.get("estimate")]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(12, 1.2 + 0.38 * len(rows)))
    ax.axvspan(1 - F.EQUIVALENCE, 1 + F.EQUIVALENCE, color="tab:green", alpha=0.12, lw=0)
    ax.axvline(1.0, color="0.3", lw=1)
    for y, f in enumerate(reversed(rows)):
        est = f["estimate"]
        lo = f["ci_low"] if f["ci_low"] else est
        hi = f["ci_high"] if f["ci_high"] is not None else est
        color = VERDICT_COLORS[f["verdict"]]
        ax.errorbar(
            [est], [y], xerr=[[est - lo], [hi - est]], fmt="o", color=color, capsize=3,
            markersize=5,
        )  # fmt: skip
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([label(f) for f in reversed(rows)], fontsize=7)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(TICKS))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}×"))
    ax.set_xlabel("A ÷ B (log scale; for times, below 1 means A is faster)")
    for verdict, color in VERDICT_COLORS.items():
        ax.plot([], [], "o", color=color, label=verdict)
    ax.legend(fontsize=7, loc="best", title="verdict", title_fontsize=7)
    ax.set_title(title)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    note = (
        "points: geometric mean of the paired per-trial ratios; bars: 95% confidence interval "
        "(bootstrap); shaded: ±5%, the band of 'equivalent'"
    )
    finish(fig, out / name, note, bottom=0.02, note_y=0.005)
    return name


def chart(doc: dict, out: Path) -> Chart | None:
    """The verdicts chart of a bench.json document (its headline findings)."""
    title = "Verdicts: A ÷ B with 95% confidence intervals"
    name = draw(V.headline(V.findings_of(doc)), out, FILE, title)
    if name is None:
        return None
    return Chart(
        name,
        title,
        "Every headline finding's ratio with its 95% confidence interval, coloured by its "
        "verdict: a bar clear of 1× is a difference this run can claim; one inside the shaded "
        "±5% band is no difference worth a decision.",
        SECTION,
    )
