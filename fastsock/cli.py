"""The ``fastsock`` command line: serve, load, plot."""

from __future__ import annotations

import click

from fastsock import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="fastsock")
def main() -> None:
    """UNIX-domain sockets vs TCP loopback, measured.

    \b
    fastsock serve   a non-blocking selectors server (echo, discard, source)
    fastsock load    a load generator with HDR latency histograms
    fastsock plot    redraw charts and REPORT.md from saved results
    """
