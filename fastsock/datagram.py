"""A datagram socket (``--type dgram``, UDP or UNIX) served on the same event loop as streams.

There are no connections: one bound socket, and each readiness event reads datagrams until the
socket is empty (at most ``BATCH``, so a flood cannot starve the timers and signals). Each
datagram is read with ``recvfrom_into`` into the server's shared read buffer and answered from
there with ``sendto`` -- no copy, nothing queued:

- echo: the same bytes back to the sender;
- discard: nothing;
- source: a datagram of the same length filled with the source pattern (byte k is k % 256),
  so a client asks for N bytes by sending N bytes.

Datagram rules, not stream rules: a reply the socket has no room for is dropped and counted
(``dropped``), never queued; an unnamed UNIX sender (a client that did not bind) has no address
to answer and is counted (``unreplyable``); a datagram longer than the read buffer is cut by the
kernel, so it is counted (``truncated``) and not answered with half its bytes.
"""

from __future__ import annotations

import errno
import logging
import socket

from fastsock.handlers.source import PATTERN
from fastsock.stats import ServerStats

log = logging.getLogger(__name__)

BATCH = 64  # datagrams per readiness event at most
# What one failed sendto means for the next: the peer is gone (ICMP port unreachable comes
# back as ECONNREFUSED on the next call of an unconnected UDP socket) -- not our error.
_PEER_GONE = {errno.ECONNREFUSED, errno.ENOENT, errno.ECONNRESET}
MODES = ("echo", "discard", "source")


class DatagramEndpoint:
    """Serves ``mode`` on one bound datagram socket; ``on_readable`` is its loop callback."""

    def __init__(self, sock: socket.socket, mode: str, read_buffer: bytearray, stats: ServerStats):
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not served over datagrams")
        self.sock = sock
        self.mode = mode
        self.buffer = read_buffer
        self.view = memoryview(read_buffer)
        self.stats = stats
        stats.datagram = True
        self._source = memoryview(PATTERN)

    def on_readable(self, mask: int) -> None:
        recvfrom_into, sendto = self.sock.recvfrom_into, self.sock.sendto
        stats, view, size = self.stats, self.view, len(self.buffer)
        reply = self.mode != "discard"
        for _ in range(BATCH):
            try:
                # MSG_TRUNC: the return value is the datagram's real length, even if longer.
                n, addr = recvfrom_into(self.buffer, 0, socket.MSG_TRUNC)
            except BlockingIOError:
                return
            except OSError as err:
                if err.errno not in _PEER_GONE:
                    stats.errors += 1
                    log.warning("datagram receive failed: %s", err)
                continue
            stats.datagrams_in += 1
            if n > size:
                stats.truncated += 1
                stats.bytes_in += size
                continue
            stats.bytes_in += n
            if not reply:
                continue
            if not addr:
                stats.unreplyable += 1
                continue
            data = view[:n] if self.mode == "echo" else self._source_bytes(n)
            try:
                sendto(data, addr)
            except BlockingIOError:
                stats.dropped += 1
                continue
            except OSError as err:
                if err.errno in _PEER_GONE:
                    stats.dropped += 1
                else:
                    stats.errors += 1
                    log.warning("datagram reply to %r failed: %s", addr, err)
                continue
            stats.datagrams_out += 1
            stats.bytes_out += n

    def _source_bytes(self, n: int) -> memoryview:
        if n <= len(self._source):
            return self._source[:n]
        self._source = memoryview(PATTERN * (n // len(PATTERN) + 1))
        return self._source[:n]
