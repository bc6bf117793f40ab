"""Studies: one question each, outside the matrix, each a ``python -m bench.studies.NAME``.

``calibrate_load`` the load engines against a bare C client (``make calibrate``);
``agree_load`` the two load engines against each other where neither is the bottleneck
(``make calibrate-agree``);
``server_speed`` fastsock against uvloop, the bare loop and C; ``instructions`` callgrind
instructions per echoed message (repeatable where wall clock is not).
"""
