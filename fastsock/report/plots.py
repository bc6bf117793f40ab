"""Charts from a results file (matplotlib, Agg, PNG at 150 dpi).

Each chart function takes the results document and an output folder, draws one PNG and returns
a :class:`Chart` saying what it shows, or ``None`` when the results hold no experiment for it
(for example a run with ``--only``). Every number drawn comes from ``summary``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from fastsock.report import summary as S  # noqa: E402
from fastsock.report.figure import Chart, any_bound, finish, grouped_bars, num_axis  # noqa: E402
from fastsock.report.transports import chart as transports_chart  # noqa: E402
from fastsock.report.verdict_chart import chart as verdicts_chart  # noqa: E402

COLORS = {"unix": "tab:blue", "tcp": "tab:orange", "tcp6": "tab:green"}
PLACEMENT_COLORS = ["tab:purple", "tab:red", "tab:gray", "tab:olive"]
RATIO_COLORS = ["black", "tab:purple", "tab:brown", "tab:cyan"]
LINESTYLES = ["-", "--", ":", "-."]
# Charts that belong to a report section of their own rather than to one experiment's.
ENGINES_SECTION = "engines"
BOUND_NOTE = "ringed/hatched: load generator CPU-bound (it, not the server, set the pace)"
PAIRED_NOTE = (
    "ratios pair the UNIX and TCP runs of the same round; points: geometric mean of the paired "
    "ratios; bars: 95% confidence interval"
)
SIZE_LABEL = "message size (bytes, one way)"


def _size_axis(ax) -> None:
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: S.fmt_size(int(x)) if x >= 1 else ""))


def _drawn_from(kind: str, sweep: str) -> Callable:
    """A chart of one experiment: the decorated ``draw(exp, out)`` becomes a chart function
    ``(doc, out)`` that finds the experiment in the results and returns ``None`` without it."""

    def wrap(draw: Callable[[dict, Path], Chart]) -> Callable[[dict, Path], Chart | None]:
        @functools.wraps(draw)
        def chart(doc: dict, out: Path) -> Chart | None:
            exp = S.find(doc, kind, sweep)
            return None if exp is None else draw(exp, out)

        return chart

    return wrap


def _axes():
    """The figure and axes of a one-panel chart (the size every line chart here shares)."""
    return plt.subplots(figsize=(7.5, 4.8))


def _done(
    fig, ax, out: Path, file: str, title: str, *, xlabel: str, ylabel: str, note: str,
    shows: str, experiment: str,
) -> Chart:  # fmt: skip
    """The last steps of a one-panel chart: axis labels, legend, title and grid, the PNG, and
    the :class:`Chart` record the report puts next to it."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    ax.set_title(title)
    ax.set_axisbelow(True)
    ax.grid(True, which="major", alpha=0.3)
    finish(fig, out / file, note)
    return Chart(file, title, shows, experiment)


def _errorline(ax, xs, spreads, bounds, **kw) -> None:
    """A line of points with error bars (medians with min-max, or ratios with their 95% CI:
    whatever the spreads hold); client-bound points get a ring."""
    pts = [(x, s, b) for x, s, b in zip(xs, spreads, bounds, strict=True) if s is not None]
    if not pts:
        return
    x = np.array([p[0] for p in pts], dtype=float)
    med = np.array([p[1].median for p in pts])
    # An interval with no upper end (too few pairs) gets no upper bar rather than an infinite one.
    hi = [p[1].hi if np.isfinite(p[1].hi) else p[1].median for p in pts]
    err = np.array(
        [
            [p[1].median - p[1].lo for p in pts],
            [h - p[1].median for h, p in zip(hi, pts, strict=True)],
        ]
    )
    line = ax.errorbar(x, med, yerr=err, marker="o", markersize=4, capsize=3, **kw)
    ringed = [(p[0], p[1].median) for p in pts if p[2]]
    if ringed:
        color = line[0].get_color()
        ax.scatter(*zip(*ringed, strict=True), s=140, facecolors="none", edgecolors=color, lw=1.2)


def _subtitle(exp: dict, keys: tuple[str, ...]) -> str:
    """The fixed parameters of an experiment, e.g. '32 conns, 64 B'."""
    p, parts = exp["params"], []
    if "conns" in keys and len(p.get("conns", [])) == 1:
        depth = p.get("depth", [1])
        in_flight = f" × {depth[0]} in flight" if len(depth) == 1 and depth[0] != 1 else ""
        parts.append(f"{p['conns'][0]} conns{in_flight}")
    if "sizes" in keys and len(p.get("sizes", [])) == 1:
        parts.append(S.fmt_size(p["sizes"][0]))
    if "placement" in keys and len(p.get("placements", [])) == 1:
        parts.append(p["placements"][0])
    return ", ".join(parts)


@_drawn_from("rtt", "size")
def rtt_vs_size(exp: dict, out: Path) -> Chart:
    fig, ax = _axes()
    runs = S.ok_runs(exp)
    sizes = S.values_of(exp, "size")
    servers = S.values_of(exp, "server")
    for si, server in enumerate(servers):
        for t in S.values_of(exp, "transport"):
            for metric, style in (("p50_us", "-"), ("p99_us", ":")):
                spreads = [
                    S.spread(S.select(runs, server=server, transport=t, size=s), metric)
                    for s in sizes
                ]
                who = f" {server}" if len(servers) > 1 else ""
                _errorline(
                    ax,
                    sizes,
                    spreads,
                    [False] * len(sizes),
                    color=COLORS.get(t),
                    ls=style if si == 0 else LINESTYLES[si % 4],
                    label=f"{S.label(t)}{who} {metric[:3]}",
                )
    _size_axis(ax)
    ax.set_yscale("log")
    num_axis(ax)
    return _done(
        fig,
        ax,
        out,
        "rtt-vs-size.png",
        f"Ping-pong RTT, 1 connection: p50 and p99 vs size ({', '.join(servers)} server)",
        xlabel=SIZE_LABEL,
        ylabel="round-trip time (µs)",
        experiment=exp["name"],
        shows="Round-trip time of one message on one connection (send, echo, receive) against "
        "message size; solid p50, dotted p99; lower is better. Log-log axes.",
        note="points: median of repeats; bars: min-max of repeats (pyperf values, 1 RTT each)",
    )


def _sweep_lines(ax, exp: dict, key: str, metric: str) -> None:
    """One line per server and transport: ``metric`` (median, min-max) along ``key``."""
    runs = S.ok_runs(exp)
    xs = S.values_of(exp, key)
    for si, server in enumerate(S.values_of(exp, "server")):
        for t in S.values_of(exp, "transport"):
            groups = [S.select(runs, server=server, transport=t, **{key: x}) for x in xs]
            _errorline(
                ax,
                xs,
                [S.spread(g, metric) for g in groups],
                [any_bound(g) for g in groups],
                color=COLORS.get(t),
                ls=LINESTYLES[si % 4],
                label=f"{S.label(t)}, {server}",
            )


@_drawn_from("closed", "size")
def throughput_vs_size(exp: dict, out: Path) -> Chart:
    fig, ax = _axes()
    _sweep_lines(ax, exp, "size", "mb_per_s")
    _size_axis(ax)
    ax.set_yscale("log")
    num_axis(ax)
    return _done(
        fig,
        ax,
        out,
        "throughput-vs-size.png",
        f"Echo throughput vs message size ({_subtitle(exp, ('conns',))}, closed loop)",
        xlabel=SIZE_LABEL,
        ylabel="MB/s echoed (payload one way, 1 MB = 10^6 B)",
        experiment=exp["name"],
        shows="Payload megabytes per second the echo server returned, for each message size, "
        "with a fixed number of connections each keeping one message in flight; higher is "
        "better.",
        note=BOUND_NOTE,
    )


@_drawn_from("closed", "conns")
def msgs_vs_conns(exp: dict, out: Path) -> Chart:
    fig, ax = _axes()
    _sweep_lines(ax, exp, "conns", "msgs_per_s")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.set_ylim(bottom=0)
    num_axis(ax)
    return _done(
        fig,
        ax,
        out,
        "msgs-vs-concurrency.png",
        f"Echo messages/s vs concurrency ({_subtitle(exp, ('sizes',))}, closed loop)",
        xlabel="concurrent connections (each with one message in flight)",
        ylabel="messages/s echoed",
        experiment=exp["name"],
        shows="Messages per second echoed as the number of connections grows; higher is better.",
        note=BOUND_NOTE,
    )


def unix_tcp_ratio(doc: dict, out: Path) -> Chart | None:
    closed = S.find(doc, "closed", "size")
    rtt = S.find(doc, "rtt", "size")
    if closed is None and rtt is None:
        return None
    fig, ax = _axes()
    n = 0
    for si, exp in enumerate(e for e in (closed, rtt) if e is not None):
        sizes = S.values_of(exp, "size")
        for server in S.values_of(exp, "server"):
            if exp["kind"] == "closed":
                spreads = [S.paired_ratios(exp, "msgs_per_s", server=server, size=s) for s in sizes]
                what = f"msgs/s UNIX ÷ TCP, {server}, {_subtitle(exp, ('conns',))}"
            else:
                spreads = [
                    S.paired_ratios(exp, "p50_us", "tcp", "unix", server=server, size=s)
                    for s in sizes
                ]
                what = f"RTT p50 TCP ÷ UNIX, {server}, 1 conn"
            # Not the transport colours: each line here is a ratio of both transports.
            _errorline(ax, sizes, spreads, [False] * len(sizes), ls=LINESTYLES[si % 4],
                       color=RATIO_COLORS[n % len(RATIO_COLORS)], label=what)  # fmt: skip
            n += 1
    ax.axhline(1.0, color="0.3", lw=1)
    _size_axis(ax)
    return _done(
        fig,
        ax,
        out,
        "unix-tcp-ratio.png",
        "UNIX-domain vs TCP loopback: ratio per message size",
        xlabel=SIZE_LABEL,
        ylabel="× advantage of UNIX over TCP (>1: UNIX better)",
        experiment=(closed or rtt)["name"],
        shows="How many times better UNIX sockets did than TCP loopback at each size: "
        "throughput ratio (UNIX ÷ TCP) and round-trip-time ratio (TCP ÷ UNIX), so above 1 "
        "always means UNIX wins.",
        note=PAIRED_NOTE,
    )


def unix_tcp_by_engine(doc: dict, out: Path) -> Chart | None:
    """UNIX ÷ TCP msgs/s per size for each of fastsock's engines (C epoll as the reference):
    does a completion-based loop, which skips the per-message poll, change the answer?"""
    exp = S.find(doc, "closed", "size")
    # Both engines over several sizes (make bench-full); make bench measures io_uring at one
    # size only, which the section's table reports without a one-point chart.
    if exp is None or len(S.values_of(exp, "size")) < 2:
        return None
    missing = [sk["reason"] for sk in exp["skipped"] if sk["what"] == "server fastsock-uring"]
    if "fastsock-uring" not in S.values_of(exp, "server") and not missing:
        return None
    fig, ax = _axes()
    sizes = S.values_of(exp, "size")
    for n, server in enumerate(S.values_of(exp, "server")):
        spreads = [S.paired_ratios(exp, "msgs_per_s", server=server, size=s) for s in sizes]
        engine = server in S.ENGINES
        _errorline(ax, sizes, spreads, [False] * len(sizes), ls="-" if engine else ":",
                   color=RATIO_COLORS[n % len(RATIO_COLORS)],
                   label=S.server_label(server) + ("" if engine else " (reference)"))  # fmt: skip
    ax.axhline(1.0, color="0.3", lw=1)
    _size_axis(ax)
    note = PAIRED_NOTE
    if missing:
        note = f"io_uring engine not measured ({missing[0]}); " + note
    return _done(
        fig,
        ax,
        out,
        "unix-tcp-by-engine.png",
        f"UNIX ÷ TCP per message size, by fastsock engine ({_subtitle(exp, ('conns',))})",
        xlabel=SIZE_LABEL,
        ylabel="UNIX ÷ TCP messages/s (>1: UNIX better)",
        experiment=ENGINES_SECTION,
        shows="How many times the messages/s of TCP loopback a UNIX socket gave, at each size, "
        "with fastsock's epoll engine (readiness: a poll, then recv and send per message) and "
        "its io_uring engine (completions: no per-message poll or syscall); the C epoll server "
        "dotted for reference. Above 1 UNIX wins; lines that part show the engine changing "
        "the answer.",
        note=note,
    )


def _hdr_x(pcts: np.ndarray) -> np.ndarray:
    """HDR-histogram percentile axis: 1/(1-p), so 90, 99, 99.9 are evenly spaced."""
    return 1.0 / (1.0 - pcts / 100.0)


def _hdr_axis(ax) -> None:
    ax.set_xscale("log")
    ticks = [0, 50, 90, 99, 99.9, 99.99]
    ax.set_xticks(_hdr_x(np.array(ticks)))
    ax.set_xticklabels([f"{t:g}%" for t in ticks])
    ax.minorticks_off()


def _closed_with_latency(doc: dict) -> dict | None:
    """The first closed-loop experiment measured by `fastsock load` (the C load client records
    no latency), by preference the size sweep."""
    for sweep in ("size", "conns", "server"):
        exp = S.find(doc, "closed", sweep)
        if exp is not None and exp["params"].get("client", "fastsock") == "fastsock":
            return exp
    return None


def latency_spectrum(doc: dict, out: Path) -> Chart | None:
    rtt = S.find(doc, "rtt", "size")
    closed = _closed_with_latency(doc)
    panels = [e for e in (rtt, closed) if e is not None]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.6), squeeze=False)
    for ax, exp in zip(axes[0], panels, strict=True):
        size = S.values_of(exp, "size")[0]
        server = S.values_of(exp, "server")[0]
        conns_values = S.values_of(exp, "conns")
        conns = 32 if 32 in conns_values else conns_values[0]
        for t in S.values_of(exp, "transport"):
            runs = S.select(S.ok_runs(exp), server=server, transport=t, size=size, conns=conns)
            if exp["kind"] == "rtt":
                values = S.pooled_rtt(runs)
                if not values:
                    continue
                top = 100.0 * (1 - 1 / len(values))  # no percentile beyond what n samples show
                pcts = np.array(
                    [p for p in (0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99) if p <= top]
                )
                lat = np.percentile(values, pcts)
                what = f"{len(values)} round trips pooled over repeats"
            else:
                run = S.median_run(runs, "msgs_per_s")
                spectrum = (run or {}).get("load", {}).get("latency_spectrum") or []
                pts = [(p, v) for p, v in spectrum if p < 100]
                if not pts:
                    continue
                pcts, lat = np.array([p for p, _ in pts]), np.array([v for _, v in pts])
                what = "the repeat with the median msgs/s"
            ax.plot(
                _hdr_x(pcts), lat, marker=".", color=COLORS.get(t), label=f"{S.label(t)} ({what})"
            )
        _hdr_axis(ax)
        ax.set_yscale("log")
        num_axis(ax)
        ax.set_xlabel("percentile")
        ax.set_ylabel("latency (µs)")
        kind = "ping-pong, 1 connection" if exp["kind"] == "rtt" else f"closed loop, {conns} conns"
        ax.set_title(f"{S.fmt_size(size)}, {server}: {kind}", fontsize=10)
        ax.legend(fontsize=7)
        ax.grid(True, alpha=0.3)
    title = "Latency percentile spectrum (HDR style), UNIX vs TCP"
    fig.suptitle(title)
    finish(fig, out / "latency-spectrum.png")
    return Chart(
        "latency-spectrum.png",
        title,
        "Latency at every percentile, from the median "
        "(50%) out to the tail (99.9% and beyond); each step right is ten times rarer. "
        "The smallest message size of the experiment is shown.",
        panels[0]["name"],
    )


@_drawn_from("open", "rate")
def latency_vs_load(exp: dict, out: Path) -> Chart:
    fig, ax = _axes()
    runs = S.ok_runs(exp)
    for t in S.values_of(exp, "transport"):
        rates = sorted({r["variant"]["rate"] for r in S.select(runs, transport=t)})
        for metric, style in (("p50_us", "-"), ("p99_us", "--")):
            groups = [S.select(runs, transport=t, rate=rate) for rate in rates]
            _errorline(
                ax,
                rates,
                [S.spread(g, metric) for g in groups],
                [any_bound(g) for g in groups],
                color=COLORS.get(t),
                ls=style,
                label=f"{S.label(t)} {metric[:3]}",
            )
            sat = [
                (rate, S.spread(g, metric).median)
                for rate, g in zip(rates, groups, strict=True)
                if g and any(S.saturated(r) for r in g)
            ]
            if sat:
                ax.scatter(*zip(*sat, strict=True), marker="x", s=70, color="black", zorder=5)
    share = f"{S.SATURATION_SHARE:.0%}"
    ax.scatter([], [], marker="x", color="black", label=f"a repeat delivered < {share} offered")
    ax.set_yscale("log")
    num_axis(ax)
    num_axis(ax, "x")
    server = exp["params"].get("servers", ["?"])[0]
    return _done(
        fig,
        ax,
        out,
        "latency-vs-load.png",
        f"Open loop: latency vs offered load ({server}, {_subtitle(exp, ('sizes', 'conns'))})",
        xlabel="offered load (messages/s, fixed schedule)",
        ylabel="latency from intended send time (µs)",
        experiment=exp["name"],
        shows="Latency when messages are sent on a fixed schedule at a given rate, stepped up "
        "past the point where the system saturates; lower is better. Where a curve turns "
        "upward, the transport has run out of capacity.",
        note="latency from when each message was due, so queueing counts (no coordinated "
        "omission); ringed: load generator CPU-bound",
    )


@_drawn_from("closed", "server")
def servers(exp: dict, out: Path) -> Chart:
    runs = S.ok_runs(exp)
    names = S.values_of(exp, "server")
    transports = S.values_of(exp, "transport")
    # One panel per message size and depth (messages in flight per connection).
    panels = [(s, d) for s in S.values_of(exp, "size") for d in S.values_of(exp, "depth")]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(max(7.5, 5.5 * len(panels)), 4.8), squeeze=False
    )
    for ax, (size, depth) in zip(axes[0], panels, strict=True):
        x = np.arange(len(names))
        series = [
            (
                S.label(t),
                COLORS.get(t),
                [S.select(runs, server=n, transport=t, size=size, depth=depth) for n in names],
            )
            for t in transports
        ]
        grouped_bars(ax, x, series, "msgs_per_s")
        ax.set_xticks(x)
        ax.set_xticklabels([S.server_label(n) for n in names], rotation=25, ha="right", fontsize=8)
        ax.set_ylabel("messages/s echoed")
        num_axis(ax)
        where = _subtitle(exp, ("conns",))
        if len(panels) > len(S.values_of(exp, "size")):  # several depths: say which one
            conns = S.values_of(exp, "conns")
            where = f"{conns[0]} conns × {depth} in flight" if len(conns) == 1 else where
        ax.set_title(f"{S.fmt_size(size)} messages, {where}", fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    c_client = exp["params"].get("client") == "c"
    title = "Server comparison: fastsock vs peers, per transport (closed loop)"
    if c_client:
        title = "Server comparison, driven by the C load client (closed loop)"
    fig.suptitle(title)
    finish(fig, out / "servers.png", BOUND_NOTE + "; bars: median, whiskers: min-max")
    client = (
        "the C reference load client (it needs less CPU per message than any server here, so "
        "the server sets the pace; it verifies every byte but records no latency)"
        if c_client
        else "the same load generator"
    )
    return Chart(
        "servers.png",
        title,
        f"Messages per second each echo server delivered to {client}, over each transport; "
        "higher is better.",
        exp["name"],
    )


def placement(doc: dict, out: Path) -> Chart | None:
    exp = S.find(doc, "rtt", "placement") or S.find(doc, "closed", "placement")
    if exp is None:
        return None
    if exp["kind"] == "rtt":
        metric = "p50_us"
    elif S.values_of(exp, "conns") == [1] and S.values_of(exp, "depth") == [1]:
        metric = "mean_rtt_us"  # ping-pong driven by a closed loop (the pingpong experiment)
    else:
        metric = "msgs_per_s"
    runs = S.ok_runs(exp)
    places = S.values_of(exp, "placement")
    transports = S.values_of(exp, "transport")
    sizes = S.values_of(exp, "size")
    fig, axes = plt.subplots(
        1, len(sizes), figsize=(max(7.5, 5.5 * len(sizes)), 4.8), squeeze=False
    )
    x = np.arange(len(transports))
    for ax, size in zip(axes[0], sizes, strict=True):
        series = [
            (
                _placement_label(doc, place),
                PLACEMENT_COLORS[pi % 4],
                [S.select(runs, placement=place, transport=t, size=size) for t in transports],
            )
            for pi, place in enumerate(places)
        ]
        grouped_bars(ax, x, series, metric)
        ax.set_xticks(x)
        ax.set_xticklabels([S.label(t) for t in transports])
        ax.set_ylabel(
            {"p50_us": "round-trip time p50 (µs)", "mean_rtt_us": "mean round trip (µs)"}.get(
                metric, "messages/s"
            )
        )
        num_axis(ax)
        ax.set_axisbelow(True)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8)
        what = {
            "p50_us": "ping-pong RTT p50, 1 connection",
            "mean_rtt_us": "ping-pong mean RTT, 1 connection",
        }.get(metric, "messages/s")
        ax.set_title(f"{what}, {S.fmt_size(size)} messages", fontsize=10)
    title = "CPU placement: same core vs cross core vs unpinned"
    fig.suptitle(title)
    finish(fig, out / "placement.png", "bars: median of repeats; whiskers: min-max")
    better = "lower" if metric == "p50_us" else "higher"
    return Chart(
        "placement.png",
        title,
        "The same measurement with server and client pinned to the same "
        "CPU, to different CPUs, or left to the scheduler; " + better + " is better. "
        "On small messages the cost of waking a process on another CPU can dominate.",
        exp["name"],
    )


def _placement_label(doc: dict, place: str) -> str:
    spec = doc.get("placements", {}).get(place, {})
    if not spec:
        return f"{place} (scheduler decides)"
    return f"{place} (server CPU {spec.get('server')}, client CPU {spec.get('client')})"


CHARTS: list[Callable[[dict, Path], Chart | None]] = [
    verdicts_chart,
    rtt_vs_size,
    throughput_vs_size,
    msgs_vs_conns,
    unix_tcp_ratio,
    unix_tcp_by_engine,
    latency_spectrum,
    latency_vs_load,
    servers,
    placement,
    transports_chart,
]


def draw_all(doc: dict, out: Path) -> list[Chart]:
    """Draw every chart the results have data for into ``out``; return what was drawn."""
    out.mkdir(parents=True, exist_ok=True)
    drawn = []
    for func in CHARTS:
        chart = func(doc, out)
        if chart is not None:
            drawn.append(chart)
    return drawn
