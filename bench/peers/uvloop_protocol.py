"""Peer: the asyncio Protocol echo server of ``asyncio_protocol.py``, run on uvloop.

Same Protocol class, different event loop: the difference between the two is the loop's cost.
"""

from __future__ import annotations

import click

from bench.peers.asyncio_protocol import run
from bench.peers.common import server_options


@click.command()
@server_options
def main(host: str, port: int | None, unix: str | None, mode: str) -> None:
    """uvloop Protocol echo/discard server (a fastsock peer)."""
    run("uvloop-protocol", "uvloop", host, port, unix, mode)


if __name__ == "__main__":
    main()
