"""Protocol handlers, one per ``--mode``; none of them touches a socket."""

from __future__ import annotations

from fastsock.handlers.base import Handler, Transport
from fastsock.handlers.discard import DiscardHandler
from fastsock.handlers.echo import EchoHandler
from fastsock.handlers.http import HttpHandler
from fastsock.handlers.source import SourceHandler

MODES: dict[str, type[Handler]] = {
    "echo": EchoHandler,
    "discard": DiscardHandler,
    "source": SourceHandler,
    # Takes a Site (root, limits): the server builds it from ServerConfig.http.
    "http": HttpHandler,
}

__all__ = [
    "MODES",
    "DiscardHandler",
    "EchoHandler",
    "Handler",
    "HttpHandler",
    "SourceHandler",
    "Transport",
]
