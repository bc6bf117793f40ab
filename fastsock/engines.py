"""``serve --engine``: which server to build, so the command line only names the engine.

The io_uring modules are imported only when that engine is asked for.
"""

from __future__ import annotations

import socket

from fastsock.server import Server, ServerConfig

ENGINES = ("epoll", "uring")


class EngineUnavailable(Exception):
    """The chosen engine cannot run here; ``str()`` is the one-line reason."""


def make_server(
    config: ServerConfig,
    engine: str,
    sock: socket.socket | None = None,
    *,
    owns_unix_file: bool = True,
) -> Server:
    """Bind and return the server of ``engine`` (``epoll`` or ``uring``); both have ``endpoint``,
    ``install_signal_handlers``, ``run`` and ``print_stats``. ``sock``: a listener made
    elsewhere (systemd's), for the epoll engine only."""
    if engine == "uring":
        from fastsock.uring.ring import UringUnavailable
        from fastsock.uring.server import UringServer

        if sock is not None:
            raise EngineUnavailable("--engine uring makes its own listener (no --systemd)")
        try:
            return UringServer(config)  # type: ignore[return-value]
        except UringUnavailable as err:
            raise EngineUnavailable(str(err)) from None
    return Server(config, sock, owns_unix_file=owns_unix_file)
