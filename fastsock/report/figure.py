"""What every chart shares: the PNG resolution, the :class:`Chart` record the report puts next
to a PNG, plain-number tick labels and grouped bars with whiskers. The chart modules (``plots``
for bench.json's experiments, ``transports``, ``http``, ``apps``) import this one, never each
other's internals.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot

from matplotlib.ticker import FuncFormatter, LogFormatter  # noqa: E402

from fastsock.report import summary as S  # noqa: E402

DPI = 150


@dataclass(frozen=True)
class Chart:
    """One PNG written, and the words the report puts next to it."""

    file: str
    title: str
    shows: str
    experiment: str


class _LogNum(LogFormatter):
    """Log-axis labels as plain numbers (30, 1k, 2M) instead of 3x10^1; matplotlib still decides
    which minor ticks deserve a label (only when the axis spans about a decade or less)."""

    def _num_to_string(self, x: float, vmin: float, vmax: float) -> str:
        return S.fmt_num(x)


def finish(
    fig, path, note: str = "", bottom: float = 0.03, top: float = 1.0, note_y: float = 0.01
) -> None:
    """Every chart's last steps: the grey footnote that says what marks and bars mean (when
    there is one), a tight layout that leaves room for it, the PNG at DPI, and the figure
    closed (pyplot keeps every open figure alive)."""
    import matplotlib.pyplot as plt

    if note:
        fig.text(0.01, note_y, note, fontsize=7, color="0.35")
    fig.tight_layout(rect=(0, bottom if note else 0, 1, top))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def num_axis(ax, axis: str = "y") -> None:
    """Plain-number tick labels (call after setting the axis scale)."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    if target.get_scale() == "log":
        target.set_major_formatter(_LogNum(labelOnlyBase=False))
        target.set_minor_formatter(_LogNum(labelOnlyBase=False, minor_thresholds=(1, 0.4)))
    else:
        target.set_major_formatter(FuncFormatter(lambda v, _: S.fmt_num(v) if v > 0 else "0"))


def any_bound(runs: list[dict]) -> bool:
    return any(S.client_bound(r) for r in runs)


def grouped_bars(ax, x, series: list[tuple[str, str, list[list[dict]]]], metric: str) -> None:
    """One bar per group and series side by side around each ``x``: the median of the group's
    runs, whiskers min-max, hatched where a run was client-bound. ``series`` holds
    (label, colour, groups of runs, one group per x)."""
    width = 0.8 / len(series)
    for i, (label, color, groups) in enumerate(series):
        spreads = [S.spread(g, metric) for g in groups]
        med = [s.median if s else 0 for s in spreads]
        err = [
            [s.median - s.lo if s else 0 for s in spreads],
            [s.hi - s.median if s else 0 for s in spreads],
        ]
        bars = ax.bar(
            x + (i - (len(series) - 1) / 2) * width,
            med,
            width,
            yerr=err,
            capsize=3,
            color=color,
            label=label,
        )
        for bar, g in zip(bars, groups, strict=True):
            if any_bound(g):
                bar.set_hatch("//")
