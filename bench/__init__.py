"""The benchmark harness. Each folder answers one kind of question:

- ``matrix``   ``make bench``: the experiments of ``matrix/matrix.toml`` (UNIX vs TCP by size,
               concurrency, offered load, server, CPU placement), run interleaved into
               ``results/bench.json``; ``python -m bench.matrix``
- ``peers``    the servers compared (fastsock, asyncio, uvloop, threads, the bare loop, C) and
               the C reference programs; ``python -m bench.peers.registry`` lists what runs here
- ``http``     static files: fastsock against nginx (wrk, ``http_load.c``); ``python -m bench.http``
- ``apps``     real servers (Redis, PostgreSQL, an nginx proxy, a veth path) over UNIX vs TCP;
               ``python -m bench.apps``
- ``studies``  one question each, outside the matrix: the load engines against a C client
               (``calibrate_load``) and each other (``agree_load``), the server against uvloop
               and the bare loop (``server_speed``), callgrind instructions per message
               (``instructions``)

Charts and the report are drawn from the saved JSON by ``fastsock.report`` (``fastsock plot``).
"""
