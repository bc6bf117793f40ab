"""Peer servers fastsock is compared with, and the C reference load client.

Every peer takes ``--host/--port`` or ``--unix`` (``@name`` = abstract) and ``--mode``, prints
one ready line ``NAME: listening on ENDPOINT`` and exits 0 on SIGTERM/SIGINT, so the harness
starts them all the same way (see :mod:`bench.peers.registry`).
"""
