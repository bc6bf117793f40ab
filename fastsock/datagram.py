"""A datagram socket (``--type dgram``, UDP or UNIX) served on the same event loop as streams.

There are no connections: one bound socket, and each readiness event reads datagrams until the
socket is empty (at most ``BATCH``, so a flood cannot starve the timers and signals). Each
datagram is read with ``recvfrom_into`` into the server's shared read buffer and answered from
there with ``sendto`` -- no copy in the common case:

- echo: the same bytes back to the sender;
- discard: nothing;
- source: a datagram of the same length filled with the source pattern (byte k is k % 256),
  so a client asks for N bytes by sending N bytes.

Backpressure, datagram style: when a reply does not fit (``sendto`` says EAGAIN: our send
buffer is full, or a UNIX peer's queue is), that one reply is kept (copied), reading stops --
further datagrams wait in the kernel's receive queue, where UDP may drop them and UNIX senders
wait -- and the reply is retried when the socket turns writable or after ``RETRY_S``, whichever
comes first (a full UNIX peer queue raises no event). So the server itself never drops an
answer, and memory stays at one datagram. An unnamed UNIX sender (a client that did not bind)
has no address to answer and is counted (``unreplyable``); a datagram longer than the read
buffer is cut by the kernel, so it is counted (``truncated``) and not answered with half its
bytes.
"""

from __future__ import annotations

import errno
import logging
import socket

from fastsock.buffer import ReadBuffer
from fastsock.handlers.source import PATTERN
from fastsock.loop import EVENT_READ, EVENT_WRITE, EventLoop, Timer
from fastsock.stats import ServerStats

log = logging.getLogger(__name__)

BATCH = 64  # datagrams per readiness event at most
RETRY_S = 0.001  # a reply that did not fit is retried at least this often
# Socket buffers asked for (the kernel caps them at net.core.[rw]mem_max): room for many
# replies in flight to many clients before a sendto says EAGAIN.
BUFFER_BYTES = 4 << 20
# The peer is gone (ICMP port unreachable comes back as ECONNREFUSED on the next call of a UDP
# socket; a UNIX client's name vanished): not our error, and nobody to answer.
_PEER_GONE = {errno.ECONNREFUSED, errno.ENOENT, errno.ECONNRESET}
MODES = ("echo", "discard", "source")


class DatagramEndpoint:
    """Serves ``mode`` on one bound datagram socket; ``on_readable`` is its loop callback."""

    def __init__(
        self,
        sock: socket.socket,
        mode: str,
        read_buffer: ReadBuffer,
        stats: ServerStats,
        loop: EventLoop,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not served over datagrams")
        self.sock = sock
        self.mode = mode
        self.buffer = read_buffer
        self.view = memoryview(read_buffer)
        self.stats = stats
        self.loop = loop
        stats.datagram = True
        self._source = memoryview(PATTERN)
        self._pending: tuple[bytes, object] | None = None  # a reply waiting for room
        self._retry_timer: Timer | None = None
        for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, BUFFER_BYTES)
            except OSError:
                pass  # the kernel's default then

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
                self._wait_for_room(bytes(data), addr)
                return
            except OSError as err:
                self._send_failed(err, addr)
                continue
            stats.datagrams_out += 1
            stats.bytes_out += n

    def _send_failed(self, err: OSError, addr: object) -> None:
        if err.errno in _PEER_GONE:
            self.stats.unreplyable += 1  # the sender is gone: nobody to answer
        else:
            self.stats.errors += 1
            log.warning("datagram reply to %r failed: %s", addr, err)

    def _wait_for_room(self, data: bytes, addr: object) -> None:
        """Keep the reply, stop reading, retry on EPOLLOUT or after RETRY_S."""
        self.stats.send_waits += 1
        self._pending = (data, addr)
        self.loop.modify(self.sock, EVENT_WRITE, self._on_writable)
        self._retry_timer = self.loop.call_later(RETRY_S, self._retry)

    def _on_writable(self, mask: int) -> None:
        self._retry()

    def _retry(self) -> None:
        if self._pending is None or self.sock.fileno() < 0:
            return
        data, addr = self._pending
        try:
            self.sock.sendto(data, addr)
        except BlockingIOError:
            self._retry_timer = self.loop.call_later(RETRY_S, self._retry)
            return
        except OSError as err:
            self._send_failed(err, addr)
        else:
            self.stats.datagrams_out += 1
            self.stats.bytes_out += len(data)
        self._pending = None
        if self._retry_timer is not None:
            self._retry_timer.cancel()
            self._retry_timer = None
        self.loop.modify(self.sock, EVENT_READ, self.on_readable)

    def _source_bytes(self, n: int) -> memoryview:
        if n <= len(self._source):
            return self._source[:n]
        self._source = memoryview(PATTERN * (n // len(PATTERN) + 1))
        return self._source[:n]
