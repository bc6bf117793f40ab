"""REPORT.md's scale section and ``scale.png``, from ``scale.json`` beside bench.json
(``make bench-scale``: ``python -m bench.studies.scale``): how throughput, tail latency, memory
and fairness change from 1 to 8,000 connections, and what an idle connection costs."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402

from fastsock.report import summary as S  # noqa: E402
from fastsock.report.figure import finish, num_axis  # noqa: E402
from fastsock.report.results import load_beside as results_file_beside  # noqa: E402

SCHEMA = "fastsock.scale/1"
FILE = "scale.json"
CHART = "scale.png"
# A server's msgs/s "bends" where it first falls below this share of its best.
BEND_SHARE = 0.8
# Memory per connection is shown from this many connections up: below it, a page or two of the
# server's own growth divided by one connection says nothing about connections.
MIN_PER_CONN = 100
LABELS = {"fastsock-uring-own": "fastsock (io_uring, own buffers)"}


def load_beside(results: Path) -> dict | None:
    """The scale study's results next to ``results`` (a bench.json), or None."""
    return results_file_beside(results, FILE, SCHEMA)


def _label(server: str) -> str:
    return LABELS.get(server, S.server_label(server))


def _points(doc: dict) -> dict[tuple[str, int], list[tuple[int, dict]]]:
    """(server, size) -> [(conns, that server's summary at that point)], by conns."""
    out: dict[tuple[str, int], list[tuple[int, dict]]] = {}
    for r in doc["results"]:
        if r.get("kind") != "load":
            continue
        for server, entry in r["servers"].items():
            if entry.get("msgs_per_s") is not None:
                out.setdefault((server, r["size"]), []).append((r["conns"], entry))
    return {k: sorted(v, key=lambda p: p[0]) for k, v in out.items()}


def bend(points: list[tuple[int, dict]]) -> str:
    """Where msgs/s peaked and where, past the peak, it first fell below BEND_SHARE of it."""
    best_c, best = max(points, key=lambda p: p[1]["msgs_per_s"])
    peak = best["msgs_per_s"]
    after = [(c, e) for c, e in points if c > best_c and e["msgs_per_s"] < BEND_SHARE * peak]
    last_c, last = points[-1]
    text = f"peaked at {S.fmt_num(peak)} msgs/s with {best_c:,} connections"
    if after:
        c, e = after[0]
        text += f", fell to {e['msgs_per_s'] / peak:.0%} of that by {c:,}"
    elif last_c != best_c:
        text += f", and held {last['msgs_per_s'] / peak:.0%} of it at {last_c:,}"
    return text


def draw(doc: dict, out: Path) -> str | None:
    pts = _points(doc)
    if not pts:
        return None
    sizes = sorted({size for _, size in pts})
    servers = list(dict.fromkeys(server for server, _ in pts))
    fig, axes = plt.subplots(2, len(sizes), figsize=(6 * len(sizes), 8), squeeze=False)
    for col, size in enumerate(sizes):
        top, bottom = axes[0][col], axes[1][col]
        for i, server in enumerate(servers):
            p = pts.get((server, size))
            if not p:
                continue
            xs = [c for c, _ in p]
            style = {"marker": "o", "label": _label(server), "color": f"C{i}"}
            top.plot(xs, [e["msgs_per_s"] for _, e in p], **style)
            rss = [e.get("rss_per_conn_kb") for _, e in p]
            bottom.plot(
                [x for x, r in zip(xs, rss, strict=True) if r is not None and x >= MIN_PER_CONN],
                [r for x, r in zip(xs, rss, strict=True) if r is not None and x >= MIN_PER_CONN],
                **style,
            )
        for ax in (top, bottom):
            ax.set_xscale("log")
            num_axis(ax, "x")
            ax.grid(True, which="major", alpha=0.3)
            ax.set_xlabel("connections (each with one message in flight)")
        top.set_title(f"{S.fmt_size(size)} messages: echo throughput", fontsize=10)
        top.set_ylabel("messages/s echoed")
        top.set_ylim(bottom=0)
        num_axis(top)
        bottom.set_title(f"{S.fmt_size(size)} messages: server memory per connection", fontsize=10)
        bottom.set_ylabel("(peak RSS - RSS before) / connections, KiB")
        bottom.set_yscale("log")
        num_axis(bottom)
        top.legend(fontsize=7)
    p = doc.get("params", {})
    fig.suptitle(f"Cost as connections grow ({p.get('transport', '?')}, closed loop)")
    note = (
        f"medians of {p.get('rounds', '?')} rounds, a fresh server per run (its VmHWM is "
        "that run's); memory per connection from 100 connections up"
    )
    finish(fig, out / CHART, note, bottom=0.02, top=0.97, note_y=0.005)
    return CHART


def _kb(x: float | None) -> str:
    return "–" if x is None else f"{x:,.2f}"


def section(doc: dict, out: Path) -> list[str]:
    chart = draw(doc, out)
    if chart is None:
        return []
    p, m = doc.get("params", {}), doc.get("metadata", {})
    pts = _points(doc)
    lines = [
        "## Cost as connections grow: 1 to 8,000",
        "",
        "*How do throughput, tail latency, memory and fairness change as connections grow, and "
        "what does an idle connection cost?*",
        "",
        f"![Cost as connections grow]({chart})",
        "",
        f"Measured by `python -m bench.studies.scale` (`make bench-scale`, "
        f"{str(m.get('date', '?'))[:10]}, load average {_load(m)}): over "
        f"{p.get('transport', '?')}, for each server a fresh process per run, then `fastsock "
        f"load` with N connections ({p.get('duration', '?')} s after {p.get('warmup', '?')} s, "
        "every byte verified); the server's peak RSS (`VmHWM`) less its RSS before, per "
        "connection; Jain's fairness index of the messages per connection (1: every "
        f"connection served alike). Medians of {p.get('rounds', '?')} rounds in an order "
        "that rotates. Why not more than 8,000: the open-file limit here is 20,000 per "
        "process, and the client and the server each hold one end of every connection, so "
        "8,000–9,000 is the ceiling for one client process against one server.",
        "",
    ]
    for (server, size), points in sorted(pts.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        lines.append(f"- {_label(server)}, {S.fmt_size(size)}: {bend(points)}.")
    lines += [
        "",
        "| server | size | connections | msgs/s | p99 µs | peak RSS MB | KiB per connection "
        f"(from {MIN_PER_CONN}) | Jain |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (server, size), points in sorted(pts.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        for conns, e in points:
            jain = e.get("jain")
            lines.append(
                f"| {_label(server)} | {S.fmt_size(size)} | {conns:,} | "
                f"{S.fmt_num(e['msgs_per_s'])} | {S.fmt_num(e['p99_us'] or 0)} | "
                f"{(e.get('server_peak_rss_kb') or 0) / 1024:.1f} | "
                f"{_kb(e.get('rss_per_conn_kb')) if conns >= MIN_PER_CONN else '–'} | "
                f"{'–' if jain is None or math.isnan(jain) else f'{jain:.3f}'} |"
            )
    idle = [r for r in doc["results"] if r.get("kind") == "idle"]
    if idle:
        lines += [
            "",
            f"Idle cost: {idle[0]['conns']:,} connections opened and left quiet (RSS per "
            "connection just accepted, and after one 64 B echo each: when a per-connection "
            "buffer gets its first page):",
            "",
            "| server | KiB per idle connection | after one echo |",
            "|---|---|---|",
        ]
        by_server: dict[str, list[dict]] = {}
        for r in idle:
            by_server.setdefault(r["server"], []).append(r)
        for server, rs in by_server.items():
            med = sorted(rs, key=lambda r: r["idle_kb_per_conn"])[(len(rs) - 1) // 2]
            lines.append(
                f"| {_label(server)} | {_kb(med['idle_kb_per_conn'])} | "
                f"{_kb(med['after_echo_kb_per_conn'])} |"
            )
    return lines + [""]


def _load(meta: dict) -> str:
    """The load average the study recorded (its metadata has the 1-minute figure)."""
    load = meta.get("load_average") or meta.get("load_avg_1min")
    if isinstance(load, list):
        return ", ".join(f"{x:.2f}" for x in load)
    return f"{load:.2f} (1 min)" if isinstance(load, int | float) else "?"
