"""The contract between a connection and the protocol logic it carries.

Handlers are *sans-IO*: they never see a socket. The connection feeds them bytes and tells them
about end-of-stream; they answer through a :class:`Transport`, which a test can replace with a
plain recorder (see tests/handlers). This is the shape of asyncio's Protocol, kept minimal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

Buffer = bytes | bytearray | memoryview
# sendfile's callback: called once, True when the whole body was sent.
OnDone = Callable[[bool], None]


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Transport(Protocol):
    """What a handler may ask of its connection."""

    def write(self, data: Buffer) -> None:
        """Send ``data``. It may point into a reused read buffer: the transport copies what it
        cannot send at once, so the caller may reuse ``data`` as soon as this returns."""

    def write_more(self, data: Buffer) -> None:
        """``write``, hinting that more follows at once (a header before its body)."""

    def sendfile(
        self, fd: int, offset: int, count: int, on_done: OnDone | None = None, head: Buffer = b""
    ) -> None:
        """Send ``head`` then ``count`` bytes of file ``fd`` from ``offset``, after what is
        already queued (the head goes with the body: MSG_MORE, or one send when copying).

        ``on_done(completed)`` is called exactly once -- possibly before this returns: True when
        all of it was sent, False when the body was dropped (connection closed or reset, file
        truncated). The caller owns ``fd`` and closes it there.
        """

    def pause_reading(self) -> None:
        """Deliver no more data until :meth:`resume_reading` (the handler is behind)."""

    def resume_reading(self) -> None:
        """Undo :meth:`pause_reading`."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable:
        """Call ``callback()`` after ``delay`` seconds unless the handle is cancelled."""

    def time(self) -> float:
        """Monotonic seconds, as the event loop last saw them."""

    def close(self) -> None:
        """Send what is queued, then close (a graceful close; reading stops now)."""

    def abort(self) -> None:
        """Close at once, dropping what is queued."""


class Handler:
    """Base handler: reads and ignores everything, closes after the peer's end-of-stream.

    Subclasses override what they need. ``wants_write`` asks the connection to call
    :meth:`writable` whenever its queue is empty and the socket can take more (a producer such
    as ``source``); it must be a class attribute (the connection reads it once).
    """

    wants_write = False

    def __init__(self) -> None:
        self.transport: Transport | None = None

    def connection_made(self, transport: Transport) -> None:
        self.transport = transport

    def data_received(self, data: memoryview) -> None:
        """``data`` is only valid during the call: copy what you keep."""

    def eof_received(self) -> None:
        """The peer shut its write side (half-close): finish what is owed, then close."""
        assert self.transport is not None
        self.transport.close()

    def writable(self) -> None:
        """The send queue is empty and the socket can take more (only if ``wants_write``)."""

    def connection_lost(self) -> None:
        self.transport = None
