"""The real-server section of REPORT.md: UNIX / TCP for Redis, PostgreSQL, an nginx proxy and
the container (veth) path, beside the synthetic echo ratio -- from ``make bench-apps``' JSON.

``python -m bench.apps`` writes ``apps.json`` (schema ``fastsock.apps_bench/1``) beside
``bench.json``; when it is there, ``fastsock plot`` draws the chart "UNIX ÷ TCP, synthetic vs
real" and adds this section. Every figure in the text is computed from the two documents.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fastsock import findings as F  # noqa: E402
from fastsock.report import summary as S  # noqa: E402
from fastsock.report.figure import finish  # noqa: E402
from fastsock.report.results import load_beside as results_file_beside  # noqa: E402

SCHEMA = "fastsock.apps_bench/1"
FILE = "apps.json"
CHART = "apps-unix-tcp.png"
# Published claims the section compares with (what was claimed, not measured here).
CLAIMS = {
    "redis": (1.5, "Redis's documentation: ~50% more throughput over UNIX sockets with "
              "redis-benchmark"),
    "postgres": (1.3, "PostgreSQL users: pgbench select-only 1.3–1.7× faster over the socket "
                 "directory"),
}  # fmt: skip
BAR_COLORS = {"real": "tab:blue", "echo": "0.6", "veth": "tab:green"}


def load_beside(results: Path) -> dict | None:
    """The bench.apps results next to ``results`` (a bench.json), or None."""
    return results_file_beside(results, FILE, SCHEMA)


def attach_findings(doc: dict) -> dict:
    """Each ratio row of apps.json gets ``finding``: the ratio of its paired repeats with a 95%
    CI and a verdict (fastsock.findings), computed from the runs; the document's ``findings``
    lists them. Returns ``doc`` (changed in place)."""
    index = {(r["app"], r["case"], r["transport"], r["repeat"]): r for r in doc["runs"]}
    repeats = sorted({r["repeat"] for r in doc["runs"]})
    for row in doc["ratios"]:
        num, den = row["ratio"].split("/")
        key = (row["app"], row["case"])
        pairs = [(index.get((*key, num, k)), index.get((*key, den, k))) for k in repeats]
        pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
        metric = pairs[0][0]["metric"] if pairs else "value"
        row["finding"] = F.finding(
            f"apps/{row['app']}/{row['case']}/{num}-vs-{den}/{metric}",
            f"{num.upper()} vs {den.upper()}: {row['app']}, {row['case']}",
            "UNIX" if num == "unix" else num,
            "TCP" if den == "tcp" else den,
            {"req_per_s": "requests/s", "tps": "transactions/s"}.get(metric, "messages/s"),
            [a["value"] for a, _ in pairs],
            [b["value"] for _, b in pairs],
            experiment="apps",
        )
    doc["findings"] = [r["finding"] for r in doc["ratios"]]
    return doc


def _r(row: dict) -> str:
    """A stored ratio with its 95% CI and verdict: 1.32× (1.10–1.58) greater."""
    f = row["finding"]
    return f"{F.ratio_text(f)} {f['verdict']}"


def _est(row: dict) -> float:
    return row["finding"]["estimate"] or 0.0


def _size(ratio: dict) -> int:
    """The message size a case moves per request (a pgbench query: a small one, 64 B)."""
    return int(ratio.get("params", {}).get("size", 64))


def echo_ratio(bench: dict | None, size: int) -> tuple[S.Spread, int] | None:
    """fastsock echo UNIX / TCP from bench.json's size sweep at the size nearest ``size``
    (on a log scale), and that size."""
    exp = S.find(bench, "closed", "size") if bench else None
    if exp is None:
        return None
    sizes = S.values_of(exp, "size")
    near = min(sizes, key=lambda s: abs(math.log(s) - math.log(max(1, size))))
    server = "fastsock" if "fastsock" in S.values_of(exp, "server") else None
    where = {"size": near, **({"server": server} if server else {})}
    r = S.paired_ratios(exp, "msgs_per_s", **where)
    return (r, near) if r else None


def _groups(doc: dict) -> list[tuple[str, dict | None, dict | None]]:
    """(label, UNIX / TCP ratio row, veth / TCP ratio row) per app and case, in run order."""
    out: dict[tuple[str, str], list] = {}
    for r in doc["ratios"]:
        slot = out.setdefault((r["app"], r["case"]), [None, None])
        slot[0 if r["ratio"] == "unix/tcp" else 1] = r
    return [(f"{app}: {case}", u, v) for (app, case), (u, v) in out.items()]


def draw(doc: dict, bench: dict | None, out: Path) -> str:
    groups = _groups(doc)
    fig, ax = plt.subplots(figsize=(9, 0.7 * len(groups) + 1.5))
    labels, y = [], 0.0
    seen: set[str] = set()

    def bar(pos: float, med: float, lo: float, hi: float, kind: str, label: str) -> None:
        hi = hi if math.isfinite(hi) else med  # no interval (too few repeats): no upper bar
        ax.barh(pos, med, 0.28, xerr=[[med - lo], [hi - med]], capsize=2,
                color=BAR_COLORS[kind], label=None if label in seen else label)  # fmt: skip
        seen.add(label)

    def ci(row: dict) -> tuple[float, float, float]:
        f = row["finding"]
        est = f["estimate"] or 0.0
        hi = f["ci_high"] if f["ci_high"] is not None else math.inf
        return est, f["ci_low"] or 0.0, hi

    for name, unix, veth in groups:
        labels.append((y, name))
        pos = y - 0.3
        if unix:
            bar(pos, *ci(unix), "real", "UNIX ÷ TCP, this link")
            pos += 0.3
        echo = echo_ratio(bench, _size(unix or veth)) if (unix or veth) else None
        if echo and not name.startswith("container"):
            r, _ = echo
            bar(pos, r.median, r.lo, r.hi, "echo", "UNIX ÷ TCP, synthetic echo (nearest size)")
            pos += 0.3
        if veth:
            bar(pos, *ci(veth), "veth", "veth ÷ TCP loopback")
        y += 1.2
    ax.set_yticks([p for p, _ in labels])
    ax.set_yticklabels([n for _, n in labels], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("ratio of throughput (requests/s, tps or messages/s); > 1: the first is faster")
    ax.set_title("UNIX ÷ TCP, synthetic vs real")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    note = "bars: geometric mean of per-repeat ratios, whiskers: 95% CI"
    finish(fig, out / CHART, note, bottom=0.02, note_y=0.005)
    return CHART


def _findings(doc: dict, bench: dict | None) -> list[str]:
    unix = [r for r in doc["ratios"] if r["ratio"] == "unix/tcp" and r["app"] != "container"]
    lines = []
    for app, (claim, text) in CLAIMS.items():
        rows = [r for r in unix if r["app"] == app]
        if not rows:
            continue
        meds = sorted(_est(r) for r in rows)
        near = [r["case"] for r in rows if _est(r) >= claim]
        lines.append(
            f"{text}. Measured here: {meds[0]:.2f}× to {meds[-1]:.2f}× over {len(rows)} "
            f"cases; {len(near)} of {len(rows)} reach {claim:.1f}×"
            + (f" ({', '.join(near)})." if near else ".")
        )
    if unix:
        ranked = sorted(unix, key=_est, reverse=True)
        top, low = ranked[0], ranked[-1]
        lines.append(
            f"Largest gain: {top['app']} {top['case']} at {_r(top)}; smallest: "
            f"{low['app']} {low['case']} at {_r(low)}."
        )
    echo = echo_ratio(bench, 64)
    if echo:
        r, size = echo
        lines.append(
            f"The synthetic fastsock echo at {S.fmt_size(size)} (bench.json, a separate run) "
            f"gave {r.median:.2f}× ({r.lo:.2f}–{r.hi:.2f}×): what the socket alone changes "
            "for a small message with a trivial server behind it."
        )
    veth = [r for r in doc["ratios"] if r["ratio"] == "veth/tcp"]
    for r in veth:
        lines.append(f"Container path, {r['case']}: veth ÷ TCP loopback {_r(r)}.")
    return lines


def _load_text(meta: dict) -> str:
    """The machine's load when the run ended (other work on a 2-core machine widens ranges)."""
    load, cpus = meta.get("load_average"), meta.get("cpu_count")
    if not load or not cpus:
        return ""
    busy = " -- other work shared the machine" if load[0] > cpus else ""
    return f"Load average at the end of the run: {load[0]:.2f} on {cpus} CPUs{busy}."


def _container_advice(doc: dict) -> str:
    veth = [r for r in doc["ratios"] if r["ratio"] == "veth/tcp"]
    if not veth:
        return "The container path was not measured in this run."
    worst = min(veth, key=_est)
    if all(r["finding"]["verdict"] == "less" for r in veth):
        return (
            "A container reaching its host over a veth pair paid for that crossing (every "
            f"case's 95% CI below 1) here (down to {_r(worst)} of loopback TCP, "
            f"{worst['case']}); mounting the host's UNIX socket into the container avoids it."
        )
    return (
        "The veth crossing was not shown slower than loopback TCP in every case here (lowest: "
        f"{_r(worst)}, {worst['case']}): the gain of mounting the host's UNIX socket into a "
        "container is the UNIX ÷ TCP ratio above, give or take that crossing."
    )


def section(doc: dict, bench: dict | None, out: Path) -> list[str]:
    """REPORT.md lines for the real-server comparison (draws its chart into ``out``)."""
    doc = attach_findings(json.loads(json.dumps(doc)))  # a copy: the caller's stays as read
    chart = draw(doc, bench, out)
    m, p = doc.get("metadata", {}), doc.get("parameters", {})
    lines = [
        "## Real servers: Redis, PostgreSQL, an nginx proxy and the container path",
        "",
        "*Does the synthetic UNIX ÷ TCP ratio carry over to the links people deploy?*",
        "",
        f"![UNIX ÷ TCP, synthetic vs real]({chart})",
        "",
        f"Measured by `python -m bench.apps --profile {p.get('profile', '?')}` "
        f"({str(m.get('date', '?'))[:10]}, `make bench-apps`) with each server started in a "
        "temp dir on a free port and a UNIX socket at once: redis-benchmark (`--csv`, keys "
        "spread with `-r`), pgbench (`-S` select-only and the TPC-B-like default, a throw-away "
        "cluster with `fsync=off`), nginx (one worker) proxying to `fastsock serve --mode http` "
        "over `http://unix:` vs `http://127.0.0.1:` with kept-alive upstream connections (wrk "
        "on the front), and TCP across a veth pair between two network namespaces (the "
        "container path). UNIX and TCP runs alternate, "
        f"{p.get('matrix', {}).get('repeats', '?')} repeats, ratios paired by repeat.",
        "",
    ]
    lines += [f"- {f}" for f in _findings(doc, bench)] + [""]
    lines += [
        "Why they can differ: a UNIX socket saves part of the kernel's per-message work (no "
        "TCP state machine, no loopback device, no checksums or segmentation), so the gain "
        "depends on how much of a request that work is. A Redis GET is a hash lookup, so it is "
        "a large part; a PostgreSQL transaction parses, plans and executes SQL (TPC-B-like also "
        "writes), so it is a smaller part and the ratio should sit nearer 1. The proxy pays the "
        "upstream hop once per request next to nginx's and fastsock's HTTP work on both sides. "
        "Each ratio is the geometric mean of the repeats' paired ratios with its 95% CI and "
        "verdict; *unclear* means this run cannot tell. " + _load_text(m),
        "",
        "Recommendation: when the client and the server share a host, point Redis and "
        "PostgreSQL clients at the UNIX socket (`-s`/`unixsocket`, `host=/run/postgresql`) "
        "wherever the table above shows a clear gain -- it costs a path instead of a port and "
        "file permissions instead of a firewall rule. For nginx in front of an app server, "
        "measure your own: the hop is one of several costs per request. " + _container_advice(doc),
        "",
        "| link | case | UNIX ÷ TCP | veth ÷ TCP | UNIX | TCP | veth | client-bound runs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    summ = {(s["app"], s["case"], s["transport"]): s for s in doc["summary"]}
    for name, unix, veth in _groups(doc):
        app, case = name.split(": ", 1)
        cells = []
        for t in ("unix", "tcp", "veth"):
            s = summ.get((app, case, t))
            unit = {"req_per_s": " req/s", "tps": " tps", "msgs_per_s": " msgs/s"}.get(
                s["metric"] if s else "", ""
            )
            cells.append(f"{S.fmt_num(s['value']['median'])}{unit}" if s else "–")
        bound = sum(
            s["client_bound_runs"]
            for t in ("unix", "tcp", "veth")
            if (s := summ.get((app, case, t)))
        )
        lines.append(
            f"| {app} | {case} | {_r(unix) if unix else '–'} | {_r(veth) if veth else '–'} | "
            f"{' | '.join(cells)} | {bound} |"
        )
    notes = list(doc.get("notes", [])) + [f"skipped: {s}" for s in doc.get("skipped", [])]
    lines += [""] + [f"- {n}" for n in notes] + [""]
    return lines
