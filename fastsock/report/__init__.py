"""Benchmark results: the ``fastsock.bench/1`` schema, summaries, charts and REPORT.md.

Everything here reads a saved results file; nothing measures. ``bench/matrix/run.py`` writes the
file, ``fastsock plot`` turns it into charts and a report.
"""

SCHEMA_ID = "fastsock.bench/1"
