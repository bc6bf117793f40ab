"""``fastsock compare A.json B.json``: do two runs give the same answers?

For "my machine vs the reference run", "before vs after a sysctl change", or two runs of
``make bench`` back to back: per finding present in both files (bench.json, or the JSON of
``fastsock ab``), each run's estimate with its 95% CI and verdict, the ratio between the runs,
and whether they agree (the same verdict and overlapping intervals). The statistics are
fastsock.findings' (``compare``, ``agreement``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from fastsock import findings as F
from fastsock.jsonout import read_document, write_json_or_exit


class FindingsError(Exception):
    """A file that holds no findings; ``str()`` is a one-line message."""


def load_findings(path: Path) -> list[dict]:
    """The ``findings`` list of a results file; raises :class:`FindingsError`."""
    doc = read_document(path, json.loads, FindingsError)
    found = doc.get("findings") if isinstance(doc, dict) else None
    keys = {"id", "estimate", "ci_low", "ci_high", "verdict"}
    if not isinstance(found, list) or not all(
        isinstance(f, dict) and keys <= set(f) for f in found
    ):
        raise FindingsError(
            f"{path}: no findings list (a results/bench.json of this version, or the "
            "output of fastsock ab --json)"
        )
    return found


def _cell(f: dict) -> str:
    return f"{F.ratio_text(f)} {f['verdict']}"


def render(rows: list[dict], summary: dict, first: str, second: str) -> str:
    lines = [f"first:  {first}", f"second: {second}", ""]
    for r in rows:
        state = "agree" if r["agree"] else ("CONTRADICT" if r["contradiction"] else "differ")
        ratio = f"{r['ratio']:.2f}×" if r["ratio"] is not None else "–"
        lines.append(r["question"])
        lines.append(
            f"    {_cell(r['first']):34} {_cell(r['second']):34} second÷first {ratio:7} {state}"
        )
    n = summary["findings"]
    if not n:
        lines.append("no finding is in both files")
    else:
        lines += [
            "",
            f"{n} findings in both: {summary['agree']} agree (same verdict, CIs overlap), "
            f"{summary['same_verdict']} the same verdict, {summary['contradictions']} "
            "contradict (greater in one, less in the other)",
            f"each run's estimate inside the other's 95% CI: {summary['inside_share']:.0%} "
            "(about 83% is expected of two calibrated runs)",
        ]
    for key, which in (("only_first", "first"), ("only_second", "second")):
        if summary[key]:
            lines.append(f"only in the {which}: {len(summary[key])} findings")
    return "\n".join(lines)


@click.command()
@click.argument("first", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("second", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "json_out", metavar="FILE|-", default=None, help="Write the comparison.")
def compare(first: Path, second: Path, json_out: str | None) -> None:
    """Set the findings of two results files side by side: FIRST and SECOND are a
    results/bench.json each (or fastsock ab --json output).

    \b
    Per finding in both: each run's A ÷ B with its 95% CI and verdict, second ÷ first,
    and whether they agree (same verdict and overlapping CIs).
    Exit status: 0 compared (whatever the answer), 2 unreadable input.
    """
    try:
        a, b = load_findings(first), load_findings(second)
    except FindingsError as err:
        click.echo(f"fastsock compare: {err}", err=True)
        sys.exit(2)
    rows = F.compare(a, b)
    summary = F.agreement(rows, a, b)
    doc = {"first": str(first), "second": str(second), "summary": summary, "rows": rows}
    if json_out is not None:
        write_json_or_exit(doc, json_out, "fastsock compare", indent=1)
        if json_out == "-":
            return
    click.echo(render(rows, summary, str(first), str(second)))
