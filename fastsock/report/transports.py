"""The `transports` experiment in REPORT.md: its chart, its findings and its table.

pipe and socketpair (the floor: no server, ``fastsock.floor``'s echo child), UNIX stream,
seqpacket and datagram sockets, TCP and UDP (``fastsock serve --type``), one connection, at
depth 1 (ping-pong: latency percentiles are round trips) and deeper (capacity). Every sentence
is computed from the runs; where the runs cannot support one, it says what was measured instead.
Ratios pair the runs of one interleaving round (they ran back to back, see ``summary``).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from fastsock.report import summary as S
from fastsock.report.figure import Chart, finish, grouped_bars, num_axis

CHART = "transports.png"
COLORS = {
    "pipe": "0.35",
    "socketpair": "0.65",
    "socketpair-seqpacket": "0.8",
    "unix": "tab:blue",
    "unix-seqpacket": "tab:cyan",
    "unix-dgram": "tab:purple",
    "tcp": "tab:orange",
    "tcp6": "tab:green",
    "udp": "tab:red",
}
# From the cheapest channel up: the order of bars, legends and table rows.
ORDER = list(COLORS)
FLOOR = ("pipe", "socketpair", "socketpair-seqpacket")
DATAGRAM = ("unix-dgram", "udp")


def _depths(exp: dict) -> tuple[int, int]:
    """(ping-pong depth, capacity depth): the smallest and the largest depth measured."""
    depths = S.values_of(exp, "depth")
    return depths[0], depths[-1]


def _transports(exp: dict) -> list[str]:
    have = set(S.values_of(exp, "transport"))
    return [t for t in ORDER if t in have] + sorted(have - set(ORDER))


def _runs(exp: dict, transport: str, size: int, depth: int) -> list[dict]:
    return S.select(S.ok_runs(exp), transport=transport, size=size, depth=depth)


def _engine(runs: list[dict]) -> str | None:
    """The load engine that measured these runs (native C or Python), if the JSON says."""
    engines = {((r.get("load") or {}).get("params") or {}).get("engine") for r in runs}
    engines.discard(None)
    return "/".join(sorted(engines)) if engines else None


def loss(runs: list[dict]) -> tuple[int, int] | None:
    """(datagrams lost, datagrams sent) summed over datagram runs; None for other runs."""
    counts = [(r.get("load") or {}).get("datagrams") for r in runs]
    counts = [c for c in counts if c]
    if not counts:
        return None
    return sum(c.get("lost", 0) for c in counts), sum(c.get("sent", 0) for c in counts)


def cpu_us_per_msg(runs: list[dict]) -> dict[str, float] | None:
    """Median CPU microseconds per message, split into client/server user/system time."""
    rows = []
    for r in runs:
        load = r.get("load") or {}
        cpu, n = load.get("cpu") or {}, load.get("messages")
        keys = ("client_user_s", "client_sys_s", "server_user_s", "server_sys_s")
        if not n or any(cpu.get(k) is None for k in keys):
            continue
        rows.append({k: cpu[k] / n * 1e6 for k in keys})
    if not rows:
        return None
    return {k: float(np.median([row[k] for row in rows])) for k in rows[0]}


# --- chart -------------------------------------------------------------------------------------


def chart(doc: dict, out: Path) -> Chart | None:
    exp = S.find_transports(doc)
    if exp is None:
        return None
    transports = _transports(exp)
    sizes = S.values_of(exp, "size")
    ping, deep = _depths(exp)
    panels = [("p50_us", ping, "round trip p50 (µs)", f"Ping-pong ({ping} in flight)")]
    panels.append(("msgs_per_s", deep, "messages/s", f"Capacity ({deep} in flight)"))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    x = np.arange(len(sizes))
    for ax, (metric, depth, ylabel, subtitle) in zip(axes, panels, strict=True):
        series = [
            (S.label(t), COLORS.get(t, "0.5"), [_runs(exp, t, s, depth) for s in sizes])
            for t in transports
        ]
        grouped_bars(ax, x, series, metric)
        ax.set_xticks(x)
        ax.set_xticklabels([S.fmt_size(s) for s in sizes])
        ax.set_xlabel("message size (bytes, one way)")
        ax.set_yscale("log")
        num_axis(ax)
        ax.set_ylabel(ylabel)
        ax.set_title(subtitle, fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        ax.set_axisbelow(True)
    axes[0].legend(fontsize=7, loc="upper left")
    lost = [
        f"UDP {S.fmt_size(s)}×{d}: {lo / sent:.1%} lost"
        for s in sizes
        for d in S.values_of(exp, "depth")
        for lo, sent in [loss(_runs(exp, "udp", s, d)) or (0, 0)]
        if lo
    ]
    note = "whiskers: min–max over repeats; hatched: load generator CPU-bound"
    if lost:
        note += "; " + ", ".join(lost)
    title = "Transports: echo over one connection, from a pipe to UDP"
    fig.suptitle(title)
    finish(fig, out / CHART, note)
    return Chart(
        CHART,
        title,
        "Left: median round trip of one message with nothing else in flight (lower is "
        "better). Right: messages per second with several in flight on the one connection "
        "(higher is better). pipe and socketpair have no server (a Python echo child over the "
        "pair); the other transports are served by `fastsock serve`.",
        exp["name"],
    )


# --- findings ----------------------------------------------------------------------------------


def _at(exp: dict, metric: str, t: str, size: int, depth: int) -> S.Spread | None:
    return S.spread(_runs(exp, t, size, depth), metric)


def _pair(exp: dict, metric: str, num: str, den: str, size: int, depth: int) -> S.Spread | None:
    return S.paired_ratios(exp, metric, num, den, size=size, depth=depth)


def findings(exp: dict) -> list[str]:
    """Plain-words answers, each computed from the runs (or saying what is missing)."""
    have = set(S.values_of(exp, "transport"))
    sizes = S.values_of(exp, "size")
    ping, deep = _depths(exp)
    small = sizes[0]
    out = [_ranking(exp, have, small, ping)]
    out.append(_floor(exp, have, sizes, ping))
    out.append(_datagrams(exp, have, sizes, ping, deep))
    out.append(_tcp(exp, have, small, ping))
    out.append(_udp_loss(exp, have))
    out.append(_pick(exp, have, small, ping, deep))
    return [f for f in out if f]


def _ranking(exp: dict, have: set, size: int, depth: int) -> str:
    ranked = [(s.median, t) for t in sorted(have) if (s := _at(exp, "p50_us", t, size, depth))]
    if not ranked:
        return ""
    ranked.sort()
    order = ", ".join(f"{S.label(t)} {v:.1f} µs" for v, t in ranked)
    return (
        f"Round trip of one {S.fmt_size(size)} message (p50, median over repeats), fastest "
        f"first: {order}."
    )


def _floor(exp: dict, have: set, sizes: list[int], depth: int) -> str:
    """How close UNIX sockets come to a pipe."""
    if "pipe" not in have:
        return "No pipe runs: the floor was not measured, so nothing is compared with it."
    parts = []
    for t in ("socketpair", "unix"):
        if t not in have:
            continue
        rs = [(s, r) for s in sizes if (r := _pair(exp, "p50_us", t, "pipe", s, depth))]
        if rs:
            each = ", ".join(f"{S.ratio_text(r)} at {S.fmt_size(s)}" for s, r in rs)
            parts.append(f"{S.label(t)} ÷ pipe round trip: {each}")
    if not parts:
        return "The pipe ran, but no UNIX socket run pairs with it."
    return (
        "How close UNIX sockets come to a pipe: "
        + "; ".join(parts)
        + ". The socketpair has the pipe's peer (the same echo child, no server), so its "
        "ratio is the socket layer alone; UNIX stream adds `fastsock serve`'s event loop."
        + _pipe_slower(exp, sizes)
    )


def _held(runs: list[dict]) -> int | None:
    """The bytes the channel held one way (``params.buffer_bytes`` of the floor's runs)."""
    values = {((r.get("load") or {}).get("params") or {}).get("buffer_bytes") for r in runs}
    values.discard(None)
    return max(values) if values else None


def _pipe_slower(exp: dict, sizes: list[int]) -> str:
    """Where the pipe lost to the socketpair, and how much each held (from the runs)."""
    slower = [
        (size, depth)
        for size in sizes
        for depth in S.values_of(exp, "depth")
        if (r := _pair(exp, "msgs_per_s", "pipe", "socketpair", size, depth)) and r.hi < 1
    ]
    pipe = _held(S.select(S.ok_runs(exp), transport="pipe"))
    pair = _held(S.select(S.ok_runs(exp), transport="socketpair"))
    if not slower or pipe is None or pair is None:
        return ""
    where = ", ".join(f"{S.fmt_size(s)} × {d} in flight" for s, d in slower)
    return (
        f" The pipe had fewer messages/s than the socketpair (95% CI below 1) at {where}: a "
        f"pipe held {pipe:,} B one way here (F_GETPIPE_SZ), the socketpair's send buffer "
        f"{pair:,} B (SO_SNDBUF)."
    )


def _datagrams(exp: dict, have: set, sizes: list[int], ping: int, deep: int) -> str:
    """What message sockets cost or save against the UNIX stream socket."""
    if "unix" not in have:
        return ""
    parts = []
    for t in ("unix-seqpacket", "unix-dgram"):
        if t not in have:
            continue
        lat = [(s, r) for s in sizes if (r := _pair(exp, "p50_us", t, "unix", s, ping))]
        cap = [(s, r) for s in sizes if (r := _pair(exp, "msgs_per_s", t, "unix", s, deep))]
        if not lat and not cap:
            continue
        text = f"{S.label(t)} ÷ UNIX stream"
        if lat:
            text += " round trip " + ", ".join(
                f"{S.ratio_text(r)} at {S.fmt_size(s)}" for s, r in lat
            )
        if cap and deep != ping:
            text += f"; msgs/s at {deep} in flight " + ", ".join(
                f"{S.ratio_text(r)} at {S.fmt_size(s)}" for s, r in cap
            )
        engines = {_engine(S.select(S.ok_runs(exp), transport=x)) for x in (t, "unix")}
        if len(engines) > 1:
            text += (
                f" (measured by different load engines: {S.label(t)} "
                f"{_engine(S.select(S.ok_runs(exp), transport=t))}, UNIX stream "
                f"{_engine(S.select(S.ok_runs(exp), transport='unix'))}, so the ratio "
                "includes the client's own cost)"
            )
        parts.append(text)
    if not parts:
        return "No seqpacket or datagram runs pair with UNIX stream runs."
    return (
        "What message boundaries cost or save (above 1× for a round trip: slower than a "
        "stream): " + "; ".join(parts) + "."
    )


def _tcp(exp: dict, have: set, size: int, depth: int) -> str:
    """TCP's extra cost over UNIX stream, and what it is made of (CPU time split)."""
    if not {"tcp", "unix"} <= have:
        return ""
    r = _pair(exp, "p50_us", "tcp", "unix", size, depth)
    if r is None:
        return ""
    text = f"TCP ÷ UNIX stream round trip at {S.fmt_size(size)}: {S.ratio_text(r)}."
    tcp = cpu_us_per_msg(_runs(exp, "tcp", size, depth))
    unix = cpu_us_per_msg(_runs(exp, "unix", size, depth))
    if tcp and unix:
        extra = {k: tcp[k] - unix[k] for k in tcp}
        total = sum(extra.values())
        kernel = extra["client_sys_s"] + extra["server_sys_s"]
        text += (
            f" CPU per message (client + server): TCP {sum(tcp.values()):.1f} µs, UNIX "
            f"{sum(unix.values()):.1f} µs, "
        )
        if total > 0:
            text += (
                f"so TCP spent {total:.1f} µs more: {kernel:+.1f} µs of system time (in the "
                f"kernel, where TCP has the IP stack, the loopback device and ACKs that a UNIX "
                f"socket does not) and {total - kernel:+.1f} µs of user time."
            )
        else:
            text += "so TCP did not cost more CPU per message in these runs."
    else:
        text += " (No CPU times recorded, so its cost is not split.)"
    return text


def _udp_loss(exp: dict, have: set) -> str:
    """Where UDP started to lose messages: the first (size, depth) with a loss."""
    if "udp" not in have:
        return "UDP was not measured."
    points = sorted({(r["variant"]["depth"], r["variant"]["size"]) for r in S.ok_runs(exp)})
    lossy, clean = [], []
    for depth, size in points:
        got = loss(_runs(exp, "udp", size, depth))
        if got is None:
            continue
        (lossy if got[0] else clean).append((size, depth, got))
    if not lossy and not clean:
        return "The UDP runs recorded no datagram counts."
    if not lossy:
        biggest = max(clean, key=lambda p: (p[1], p[0]))
        sent = sum(p[2][1] for p in clean)
        return (
            f"UDP lost no datagram in these runs ({sent:,} sent; up to "
            f"{S.fmt_size(biggest[0])} with {biggest[1]} in flight)."
        )
    first = min(lossy, key=lambda p: (p[1], p[0]))
    size, depth, (lost, sent) = first
    return (
        f"UDP started to lose datagrams at {S.fmt_size(size)} with {depth} in flight: "
        f"{lost:,} of {sent:,} ({lost / sent:.2%}) lost; "
        f"{len(clean)} other size/depth point(s) lost none. The loss is counted, not an "
        "error (loopback UDP drops when a receive queue overflows)."
    )


def _pick(exp: dict, have: set, size: int, ping: int, deep: int) -> str:
    """The recommendation, from the ratios above."""
    words = []
    sp = _pair(exp, "p50_us", "socketpair", "pipe", size, ping) if "pipe" in have else None
    if sp is not None:
        words.append(
            f"between a parent and its child, a socketpair (one descriptor both ways, "
            f"{sp.median:.2f}× a pipe pair's round trip at {S.fmt_size(size)}) or the pipe "
            "pair where that difference matters"
        )
    ut = _pair(exp, "msgs_per_s", "unix", "tcp", size, deep) if {"unix", "tcp"} <= have else None
    if ut is not None:
        if ut.lo > 1:
            words.append(
                f"between unrelated processes on one machine a UNIX stream socket "
                f"({S.ratio_text(ut)} TCP's messages/s at {S.fmt_size(size)}, {deep} in flight)"
            )
        else:
            words.append(
                f"UNIX stream vs TCP at {S.fmt_size(size)} was not a clear win here "
                f"({S.ratio_text(ut)} messages/s), so pick by addressing and permissions"
            )
    if "udp" in have:
        got = loss([r for r in S.ok_runs(exp) if r["variant"]["transport"] == "udp"])
        if got and got[0]:
            words.append("UDP only where losing a message is acceptable (it lost some here)")
        elif got:
            words.append("UDP did not lose a message here, but nothing guarantees that")
    if not words:
        return ""
    return "What to pick: " + "; ".join(words) + "."


def headlines(exp: dict) -> list[str]:
    """The one finding for the report's top: what to pick."""
    have = set(S.values_of(exp, "transport"))
    ping, deep = _depths(exp)
    pick = _pick(exp, have, S.values_of(exp, "size")[0], ping, deep)
    return [pick] if pick else []


# --- table -------------------------------------------------------------------------------------


def table(exp: dict) -> list[str]:
    rows = [
        "| transport | size | in flight | p50 µs | p99 µs | msgs/s | lost | load engine | "
        "CPU µs/msg (client+server) | client-bound |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = {t: i for i, t in enumerate(_transports(exp))}
    keys = {
        (r["variant"]["transport"], r["variant"]["size"], r["variant"]["depth"])
        for r in S.ok_runs(exp)
    }
    for t, size, depth in sorted(keys, key=lambda k: (k[2], k[1], order.get(k[0], 99))):
        runs = _runs(exp, t, size, depth)
        got = loss(runs)
        lost = "–" if got is None else f"{got[0]:,} of {got[1]:,}"
        cpu = cpu_us_per_msg(runs)
        bound = sum(S.client_bound(r) for r in runs)
        rows.append(
            f"| {S.label(t)} | {S.fmt_size(size)} | {depth} | "
            f"{_fmt(S.spread(runs, 'p50_us'))} | {_fmt(S.spread(runs, 'p99_us'))} | "
            f"{_fmt(S.spread(runs, 'msgs_per_s'))} | {lost} | {_engine(runs) or '–'} | "
            f"{f'{sum(cpu.values()):.1f}' if cpu else '–'} | {bound}/{len(runs)} |"
        )
    return rows


def _fmt(s: S.Spread | None) -> str:
    if s is None:
        return "–"
    if s.n == 1 or s.lo == s.hi:
        return S.fmt_num(s.median)
    return f"{S.fmt_num(s.median)} ({S.fmt_num(s.lo)}–{S.fmt_num(s.hi)})"


def section(exp: dict) -> list[str]:
    """The findings and the table (the generic section adds the title and the chart)."""
    lines = [f"- {f}" for f in findings(exp)] + [""]
    lines += table(exp) + [""]
    lines += [
        "pipe/socketpair: `python -m fastsock.floor` (no server; a Python echo child, "
        "blocking `readv` + `write`); the others: `fastsock serve --type "
        "stream|seqpacket|dgram` and `fastsock load --type …`. *load engine*: `native` is the "
        "C loop, `python` the Python one (datagrams have no native loop in "
        "`fastsock load`). CPU µs/msg: client + server (or echo child) CPU time per message.",
        "",
    ]
    return lines
