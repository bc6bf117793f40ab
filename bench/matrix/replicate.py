"""``make bench-replicate``: run the quick matrix K times back to back; do the runs agree?

    python -m bench.matrix.replicate                  # 3 runs of the quick profile
    python -m bench.matrix.replicate --runs 2 --out results/replicate.json

Each run is ``python -m bench.matrix --no-plot`` into a folder of its own (kept under
``--keep DIR`` if given). Every pair of runs is compared with fastsock.findings.compare: the
share of findings with the same verdict, how often one run's estimate lies inside the other's
95% CI (about 83% is what two calibrated runs give), contradictions (greater in one, less in
the other: never acceptable), the median CI half-width, the A/A finding's verdict in every run,
and the time per run. The summary is written as JSON (``replicate.json``); REPORT.md shows it
when the file lies beside bench.json (fastsock/report/replicate.py).
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from fastsock import findings as F
from fastsock import metadata as md
from fastsock.pressure import cpu_pressure_us, pressure_share
from fastsock.report.replicate import FILE, SCHEMA


def run_matrix(profile: str, out: Path, extra: list[str]) -> tuple[float, dict]:
    """One matrix run into ``out``; (wall seconds, its bench.json)."""
    argv = [sys.executable, "-m", "bench.matrix", "--profile", profile, "--out", str(out)]
    start = time.monotonic()
    proc = subprocess.run([*argv, "--no-plot", *extra], stdin=subprocess.DEVNULL, text=True)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise click.ClickException(f"bench.matrix failed (exit {proc.returncode})")
    return wall, json.loads((out / "bench.json").read_text(encoding="utf-8"))


def summarize(docs: list[dict], walls: list[float]) -> dict:
    """The replication figures of several runs' bench.json documents."""
    pairs = []
    for (i, a), (j, b) in itertools.combinations(enumerate(docs), 2):
        rows = F.compare(a["findings"], b["findings"])
        pairs.append({"runs": [i, j], **F.agreement(rows, a["findings"], b["findings"])})
    runs = []
    for doc, wall in zip(docs, walls, strict=True):
        found = doc["findings"]
        aa = [f for f in found if _is_aa(f)]
        runs.append(
            {
                "wall_s": round(wall, 1),
                "matrix_s": doc["metadata"]["duration_s"],
                "load_average": doc["metadata"].get("load_average"),
                "findings": len(found),
                "verdicts": {v: sum(f["verdict"] == v for f in found) for v in F.VERDICTS},
                "aa": [
                    {"id": f["id"], "verdict": f["verdict"], "estimate": f["estimate"]} for f in aa
                ],  # fmt: skip
                "median_half_width": _median([f["half_width"] for f in found]),
                "superseded": sum(
                    bool(r.get("superseded")) for e in doc["experiments"] for r in e["runs"]
                ),
            }
        )
    ids = [f["id"] for f in docs[0]["findings"]] if docs else []
    per_finding = []
    for fid in ids:
        row = [next((f for f in d["findings"] if f["id"] == fid), None) for d in docs]
        if any(f is None for f in row):
            continue
        per_finding.append(
            {
                "id": fid,
                "question": row[0]["question"],
                "runs": [
                    {k: f[k] for k in ("estimate", "ci_low", "ci_high", "verdict", "n")}
                    for f in row
                ],
            }
        )
    return {
        "pairs": pairs,
        "runs": runs,
        "per_finding": per_finding,
        "totals": {
            "findings_min": min((r["findings"] for r in runs), default=0),
            "same_verdict_share": _mean([p["same_verdict_share"] for p in pairs]),
            "inside_share": _mean([p["inside_share"] for p in pairs]),
            "contradictions": sum(p["contradictions"] for p in pairs),
            "median_half_width": _median([r["median_half_width"] for r in runs]),
            "aa_claims": sum(a["verdict"] in ("greater", "less") for r in runs for a in r["aa"]),
            "max_matrix_s": max((r["matrix_s"] for r in runs), default=None),
        },
    }


def _is_aa(f: dict) -> bool:
    from fastsock.report.verdicts import is_aa

    return is_aa(f)


def _mean(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def _median(values: list) -> float | None:
    import statistics

    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("--runs", type=click.IntRange(2, 10), default=3, help="Matrix runs back to back.")
@click.option("--profile", default="quick", help="Matrix profile.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("results") / FILE,
    help="The summary JSON.",
)
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep each run's bench.json in DIR/run-N (default: a temporary folder).",
)
def main(runs: int, profile: str, out: Path, keep: Path | None) -> None:
    """Run the benchmark matrix several times back to back and measure how far the runs'
    findings agree."""
    meta = md.for_bench()
    psi0 = cpu_pressure_us()
    t0 = time.monotonic()
    docs, walls = [], []
    with tempfile.TemporaryDirectory(prefix="fsreplicate-") as tmp:
        base = keep if keep is not None else Path(tmp)
        for i in range(runs):
            click.echo(f"replicate: run {i + 1} of {runs}", err=True)
            folder = base / f"run-{i + 1}"
            folder.mkdir(parents=True, exist_ok=True)
            wall, doc = run_matrix(profile, folder, [])
            docs.append(doc)
            walls.append(wall)
    total = time.monotonic() - t0
    meta["duration_s"] = round(total, 1)
    summary = summarize(docs, walls)
    pressure = pressure_share(psi0, cpu_pressure_us(), total)
    doc = {
        "schema": SCHEMA,
        "profile": profile,
        "metadata": meta,
        "cpu_pressure": None if pressure is None else round(pressure, 4),
        **summary,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    t = summary["totals"]
    click.echo(f"wrote {out}")
    click.echo(
        f"replicate: {runs} runs; same verdict {t['same_verdict_share']:.0%}, estimate inside "
        f"the other run's CI {t['inside_share']:.0%}, {t['contradictions']} contradictions, "
        f"median CI half-width {t['median_half_width']:.1%}, A/A claims {t['aa_claims']}, "
        f"longest matrix {t['max_matrix_s']:.0f} s"
    )


if __name__ == "__main__":
    main()
