"""discard: read and drop everything (RFC 863), for one-way send throughput."""

from __future__ import annotations

from fastsock.handlers.base import Handler


class DiscardHandler(Handler):
    """The base handler already reads and ignores; this names the mode."""
