"""``fastsock plot``: redraw every chart and REPORT.md from a saved results file."""

from __future__ import annotations

from pathlib import Path

import click

from fastsock.report.results import ResultsError, load_results


@click.command()
@click.argument("results", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the PNG charts and REPORT.md  [default: the folder of RESULTS]",
)
def plot(results: Path, out: Path | None) -> None:
    """Redraw the charts and REPORT.md from RESULTS (a results/bench.json) without re-running."""
    try:
        doc = load_results(results)
    except ResultsError as err:
        raise click.ClickException(str(err)) from None
    out = out if out is not None else results.parent
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise click.ClickException(f"cannot create {out}: {err.strerror}") from None
    # Imported here: matplotlib takes a moment to load, and `fastsock --help` should not wait.
    from fastsock.report.plots import draw_all
    from fastsock.report.report import write_report

    charts = draw_all(doc, out)
    report = write_report(doc, charts, out, results.name, results.parent)
    for chart in charts:
        click.echo(f"wrote {out / chart.file}")
    click.echo(f"wrote {report}")
