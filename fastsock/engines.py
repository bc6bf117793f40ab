"""``serve --engine``: which server to build, so the command line only names the engine.

The io_uring modules are imported only when that engine is asked for.
"""

from __future__ import annotations

from fastsock.server import Server, ServerConfig

ENGINES = ("epoll", "uring")

# The io_uring engine's default receive buffer, one per connection. Not the epoll engine's
# shared 256K: 32 connections x 256 KiB of buffers did not stay in cache and cost 1.2-1.6x the
# server CPU per 64 KiB-1 MiB echo of 64 KiB buffers (bench.server_speed; see the commit).
URING_READ_SIZE = 64 * 1024


class EngineUnavailable(Exception):
    """The chosen engine cannot run here; ``str()`` is the one-line reason."""


def make_server(config: ServerConfig, engine: str) -> Server:
    """Bind and return the server of ``engine`` (``epoll`` or ``uring``); both have ``endpoint``,
    ``install_signal_handlers``, ``run`` and ``print_stats``."""
    if engine == "uring":
        from fastsock.uring.ring import UringUnavailable
        from fastsock.uring.server import UringServer

        try:
            return UringServer(config)  # type: ignore[return-value]
        except UringUnavailable as err:
            raise EngineUnavailable(str(err)) from None
    return Server(config)
