"""The benchmark matrix (``make bench``, ``python -m bench.matrix``).

``matrix.toml`` holds the experiments as data; ``plan`` reads it and expands variants; ``run``
interleaves them and writes ``results/bench.json``; ``servers`` keeps each experiment's servers
up; the experiment kinds are measured by ``loadrun`` (closed and open loop: ``fastsock load``
or the C client) and ``runrtt`` (ping-pong under pyperf, the script ``rtt.py``); ``placement``
pins processes to CPUs and ``progress`` says what runs.
"""
