"""The static-file section of REPORT.md: fastsock vs nginx, from ``make bench-http``'s JSON.

``bench/http/run.py`` writes ``http.json`` (schema ``fastsock.http_bench/1``) beside
``bench.json``; when it is there, ``fastsock plot`` and ``make bench`` draw its chart and add its
section, saying when and how it was measured (it is a separate run from the rest).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fastsock import findings as F  # noqa: E402
from fastsock.report import summary as S  # noqa: E402
from fastsock.report.figure import finish  # noqa: E402
from fastsock.report.plots import BOUND_NOTE, COLORS  # noqa: E402
from fastsock.report.results import load_beside as results_file_beside  # noqa: E402

SCHEMA = "fastsock.http_bench/1"
FILE = "http.json"
CHART = "http-vs-nginx.png"
SERVER_ORDER = ("fastsock", "fastsock-copy", "nginx")


def load_beside(results: Path) -> dict | None:
    """The http_bench results next to ``results`` (a bench.json), or None."""
    return results_file_beside(results, FILE, SCHEMA)


def finding_id(ratio: dict) -> str:
    num, den = ratio["ratio"].split("/")
    return (
        f"http/{ratio['transport']}/{ratio['size']}B/{ratio['client']}/{num}-vs-{den}/"
        f"{ratio['metric']}"
    )


def findings(doc: dict) -> list[dict]:
    """A finding per ratio row of http.json: the servers' paired runs of each repeat (they ran
    back to back), with a 95% CI and a verdict (fastsock.findings)."""
    index = {
        (r["repeat"], r["server"], r["transport"], r["size"], r["client"]): r for r in doc["runs"]
    }
    repeats = sorted({r["repeat"] for r in doc["runs"]})
    out = []
    for row in doc["ratios"]:
        num, den = row["ratio"].split("/")
        key = (row["transport"], row["size"], row["client"])
        pairs = [(index.get((k, num, *key)), index.get((k, den, *key))) for k in repeats]
        pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
        metric = row["metric"]
        words = "requests/s" if metric == "req_per_s" else "MB/s of body"
        out.append(
            F.finding(
                finding_id(row),
                f"{num} vs {den}: static files, {words} ({S.label(row['transport'])}, "
                f"{S.fmt_size(row['size'])}, {row['client']})",
                num,
                den,
                words,
                [a[metric] for a, _ in pairs],
                [b[metric] for _, b in pairs],
                experiment="http",
            )
        )
    return out


def met(f: dict, target: float | None) -> str:
    """Is the target met? yes where the whole CI is at or above it, no where it is below."""
    if target is None:
        return "–"
    if f["ci_low"] is not None and f["ci_low"] >= target:
        return "yes"
    if f["ci_high"] is not None and f["ci_high"] < target:
        return "**no**"
    return "unclear"


def _metric(size: int) -> tuple[str, str]:
    # Small files are about requests per second, large ones about bytes per second.
    return ("req_per_s", "requests/s") if size < (1 << 20) else ("mb_per_s", "MB/s (body)")


def draw(doc: dict, out: Path) -> str:
    """Bars per server and transport, one panel per file size; returns the file name."""
    rows = doc["summary"]
    sizes = sorted({r["size"] for r in rows})
    transports = [t for t in S.TRANSPORT_ORDER if any(r["transport"] == t for r in rows)]
    servers = [s for s in SERVER_ORDER if any(r["server"] == s for r in rows)]
    ncols = min(4, len(sizes))  # the full profile has 7 sizes: wrap them into rows
    nrows = -(-len(sizes) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 4.2 * nrows), squeeze=False)
    for ax in axes.flat[len(sizes) :]:
        ax.set_visible(False)
    width = 0.8 / max(1, len(transports))
    for ax, size in zip(axes.flat, sizes, strict=False):
        key, unit = _metric(size)
        for i, t in enumerate(transports):
            xs, meds, errs, bound = [], [], [[], []], []
            for j, server in enumerate(servers):
                hit = [
                    r for r in rows if (r["server"], r["transport"], r["size"]) == (server, t, size)
                ]
                if not hit:
                    continue
                stat = hit[0][key]
                xs.append(j + (i - (len(transports) - 1) / 2) * width)
                meds.append(stat["median"])
                errs[0].append(stat["median"] - stat["min"])
                errs[1].append(stat["max"] - stat["median"])
                bound.append(hit[0]["client_bound_runs"] > 0)
            clients = sorted({r["client"] for r in rows if r["transport"] == t})
            bars = ax.bar(
                xs,
                meds,
                width,
                yerr=errs,
                capsize=3,
                color=COLORS.get(t),
                label=f"{S.label(t)} ({', '.join(clients)})",
            )
            for bar, b in zip(bars, bound, strict=True):
                if b:
                    bar.set_hatch("//")
        ax.set_xticks(range(len(servers)))
        ax.set_xticklabels(servers, fontsize=8)
        ax.set_ylabel(unit)
        ax.set_title(f"{S.fmt_size(size)} file, keep-alive GETs", fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Static files: fastsock (sendfile, copy) vs nginx")
    finish(fig, out / CHART, BOUND_NOTE + "; bars: median, whiskers: min-max", bottom=0.04)
    return CHART


def section(doc: dict, out: Path) -> list[str]:
    """REPORT.md lines for the HTTP comparison (draws its chart into ``out``)."""
    chart = draw(doc, out)
    m, p = doc.get("metadata", {}), doc.get("parameters", {})
    lines = [
        "## Static files over HTTP: fastsock vs nginx",
        "",
        "*Serving files to a proxy over a UNIX socket or TCP: how close does a pure-Python "
        "sendfile server come to nginx?*",
        "",
        f"![Static files: fastsock vs nginx]({chart})",
        "",
        f"Measured by `python -m bench.http --profile {p.get('profile', '?')}` "
        f"({str(m.get('date', '?'))[:10]}; `make bench-http` runs the quick "
        "profile, `make bench-full` the full one) with "
        "`fastsock serve --mode http` with `os.sendfile` (*fastsock*) and with read+send "
        f"(*fastsock-copy*) against nginx with one worker and `sendfile on`, "
        f"{p.get('conns', '?')} keep-alive connections, {p.get('repeats', '?')} interleaved "
        "repeats (each ratio pairs the servers' runs of one repeat; 95% CI and verdict as in "
        "the verdicts above; a target counts as met where the whole CI clears it). "
        "TCP is driven by wrk, UNIX by a small C client (wrk cannot speak UNIX "
        "sockets); both verify every response. Small files are compared in requests/s, large "
        "ones in MB/s of body. Compare servers within a transport, not the transports with "
        "each other: they use different clients (wrk's small read buffer caps it near "
        "2.3 GB/s).",
        "",
        "| ratio | transport | file | client | metric | A ÷ B, 95% CI | verdict | target | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    found = {f["id"]: f for f in findings(doc)}
    for r in doc["ratios"]:
        key, _ = _metric(r["size"])
        f = found.get(finding_id(r))
        if r["metric"] != key or f is None:
            continue
        target = r.get("target")
        bound = [who for who, n in (r.get("client_bound") or {}).items() if n]
        flag = f" (client-bound: {', '.join(bound)})" if bound else ""
        lines.append(
            f"| {r['ratio']} | {S.label(r['transport'])} | {S.fmt_size(r['size'])} | "
            f"{r['client']} | {r['metric']} | {F.ratio_text(f)}{flag} | {f['verdict']} | "
            f"{'–' if target is None else f'≥ {target}×'} | {met(f, target)} |"
        )
    lines += [
        "",
        "| server | transport | file | requests/s | MB/s | server CPU per request |",
        "|---|---|---|---|---|---|",
    ]
    for r in doc["summary"]:
        lines.append(
            f"| {r['server']} | {S.label(r['transport'])} | {S.fmt_size(r['size'])} | "
            f"{S.fmt_num(r['req_per_s']['median'])} | {S.fmt_num(r['mb_per_s']['median'])} | "
            f"{r['server_cpu_us_per_req']:.1f} µs |"
        )
    notes = [n for n in doc.get("notes", []) if not n.startswith("some runs were client-bound")]
    if any(r["client_bound_runs"] for r in doc["summary"]):
        notes.append(
            "Where a run was client-bound (the load generator at ≥ 90% of a core, hatched), the "
            "client set the pace and ratios are squeezed towards 1."
        )
    lines += [""] + [f"- {note}" for note in notes] + [""]
    return lines
