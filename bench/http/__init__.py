"""Static files: ``fastsock serve --mode http`` against nginx (``python -m bench.http``).

``run`` is the comparison (``results/http.json``), ``clients`` the load clients (wrk over TCP,
``http_load.c`` over both), ``nginx`` the reference server with a generated config.
"""
