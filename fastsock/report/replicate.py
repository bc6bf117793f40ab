"""REPORT.md's replication section, from ``replicate.json`` beside bench.json
(``make bench-replicate``): do back-to-back runs of the quick matrix give the same answers?"""

from __future__ import annotations

from pathlib import Path

from fastsock.report.results import load_beside as results_file_beside

SCHEMA = "fastsock.replicate/1"
FILE = "replicate.json"


def load_beside(results: Path) -> dict | None:
    """The replication summary next to ``results`` (a bench.json), or None."""
    return results_file_beside(results, FILE, SCHEMA)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.0%}"


def section(doc: dict) -> list[str]:
    t = doc["totals"]
    runs = doc["runs"]
    m = doc["metadata"]
    rows = [
        "| run | findings | greater / less / equivalent / unclear | median CI half-width "
        "| A/A verdicts | trials run again | matrix took |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(runs, 1):
        v = r["verdicts"]
        aa = ", ".join(a["verdict"] for a in r["aa"]) or "–"
        hw = r["median_half_width"]
        rows.append(
            f"| {i} | {r['findings']} | {v['greater']} / {v['less']} / {v['equivalent']} / "
            f"{v['unclear']} | {'–' if hw is None else f'±{hw:.1%}'} | {aa} | "
            f"{r['superseded']} | {r['matrix_s']:.0f} s |"
        )
    psi = doc.get("cpu_pressure")
    load = m.get("load_average")
    return [
        "## Does a second run agree?",
        "",
        f"*`make bench-replicate`: {len(runs)} runs of the `{doc['profile']}` matrix back to "
        f"back on {m['hostname']} on {m['date'][:10]} (load average at the start "
        f"{', '.join(f'{x:.2f}' for x in load) if load else '?'}; CPU pressure over all runs "
        f"{_pct(psi)}). Every pair of runs compared finding by finding.*",
        "",
        *rows,
        "",
        f"- Same verdict in both runs of a pair: **{_pct(t['same_verdict_share'])}** of the "
        "findings.",
        f"- One run's estimate inside the other run's 95% CI: **{_pct(t['inside_share'])}** "
        "(two calibrated runs give about 83%).",
        f"- Contradictions (greater in one run, less in another): **{t['contradictions']}**.",
        f"- A/A findings that claimed a difference between two identical servers: "
        f"**{t['aa_claims']}**.",
        "",
    ]
