"""What every Python peer shares: its options, its listening socket and its ready line."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from fastsock.address import (
    Endpoint,
    EndpointError,
    bound_endpoint,
    endpoint_from_options,
    listen,
    remove_unix_file,
    unix_file_identity,
)

MODES = ("echo", "discard")
# One read per readiness event; large enough for a 64 KiB message in one go.
READ_SIZE = 65536


class StartError(click.ClickException):
    """A start-up failure: one line on stderr, exit status 2 (as ``fastsock serve`` does)."""

    exit_code = 2


def server_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options every peer takes, in the order ``fastsock serve`` documents them."""
    options = [
        click.option("--host", default="127.0.0.1", show_default=True, help="IP to listen on."),
        click.option("--port", type=int, default=None, help="TCP port (0 picks a free one)."),
        click.option("--unix", default=None, help="UNIX socket path; @name = abstract."),
        click.option(
            "--mode",
            type=click.Choice(MODES),
            default="echo",
            show_default=True,
            help="echo returns every byte; discard reads and drops.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@contextmanager
def listening(
    host: str, port: int | None, unix: str | None
) -> Iterator[tuple[socket.socket, Endpoint]]:
    """A non-blocking listening socket and its real endpoint; closes it and removes our socket
    file on the way out, whatever the way out is."""
    try:
        requested = endpoint_from_options(host, port, unix)
        sock = listen(requested)
    except EndpointError as err:
        raise StartError(str(err)) from None
    identity = None
    if requested.is_unix and not requested.is_abstract:
        identity = unix_file_identity(requested.path)
    try:
        yield sock, bound_endpoint(sock, requested)
    finally:
        sock.close()
        if identity is not None:
            remove_unix_file(requested.path, identity)


def announce(name: str, endpoint: Endpoint) -> None:
    """The ready line the harness waits for; flushed, because stdout is a pipe there."""
    print(f"{name}: listening on {endpoint}", flush=True)


def set_nodelay(sock: Any) -> None:
    """TCP_NODELAY on a TCP connection (a no-op for UNIX sockets): small echoes must not wait
    for Nagle's algorithm to coalesce them."""
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
