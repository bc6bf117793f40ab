"""Real servers over UNIX sockets vs TCP: Redis, PostgreSQL (``python -m bench.apps``).

Modules: ``parsers`` (redis-benchmark CSV, pgbench summary), ``servers`` (throw-away Redis and
PostgreSQL instances in temp dirs, ready by connecting, stopped by PID), ``clients`` (the
benchmark tools, run with their CPU time measured), ``redis_pg`` (those two apps' runs),
``proxy`` (nginx -> ``fastsock serve --mode http`` over UNIX vs TCP upstreams, wrk in front),
``netns`` and ``veth`` (the container path: TCP across a veth pair between two namespaces),
``stats`` (medians, paired ratios) and ``__main__`` (the run, ``results/apps.json``); the
matrix is data in ``matrix.toml``.
"""
