"""Real servers over UNIX sockets vs TCP: Redis, PostgreSQL (``python -m bench.apps``).

Modules: ``parsers`` (redis-benchmark CSV, pgbench summary), ``servers`` (throw-away Redis and
PostgreSQL instances in temp dirs, ready by connecting, stopped by PID), ``clients`` (the
benchmark tools, run with their CPU time measured), ``stats`` (medians, paired UNIX / TCP ratios)
and ``__main__`` (the interleaved run, ``results/apps.json``).
"""
