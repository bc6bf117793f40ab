"""source: write a repeating pattern as fast as the peer reads, for one-way receive throughput.

The stream is defined so a client can verify it without any framing: the byte at stream offset
``k`` is ``k % 256``. The pattern buffer is a whole number of 256-byte periods, and a partial send
leaves the rest of the same buffer queued, so every write continues the stream exactly.
"""

from __future__ import annotations

from fastsock.handlers.base import Handler

PERIOD = bytes(range(256))
PATTERN = PERIOD * 1024  # 256 KiB, immutable: the transport queues views of it, never copies


def expected_stream(offset: int, length: int) -> bytes:
    """The bytes a source connection sends at ``offset``..``offset+length`` (for verifiers)."""
    start = offset % 256
    reps = (start + length) // 256 + 1
    return (PERIOD * reps)[start : start + length]


class SourceHandler(Handler):
    wants_write = True
    # What one write sends. A multiple of 256 bytes, so the stream stays k % 256 across writes.
    message = PATTERN

    def writable(self) -> None:
        self.transport.write(self.message)  # type: ignore[union-attr]


class MessageSourceHandler(SourceHandler):
    """source over SOCK_SEQPACKET: 64 KiB messages. A message must fit the socket's send buffer
    whole (one 256 KiB write fails with EMSGSIZE there), and each arrives whole."""

    message = PATTERN[: 64 * 1024]
