"""``python -m bench.matrix``: see :mod:`bench.matrix.run`."""

from bench.matrix.run import main

main()
