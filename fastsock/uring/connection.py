"""One connection of the io_uring engine: the :class:`~fastsock.handlers.base.Transport` the
shared sans-IO handlers talk to, driven by completions instead of readiness.

A connection receives into buffers of the server's shared pool (:mod:`fastsock.uring.pool`:
the kernel picks one when data arrives, ``IOSQE_BUFFER_SELECT``), or, once its echoes are small,
into a small buffer of its own (``small_mode``, see :data:`SMALL_ECHO`); it has at most one RECV
and one SEND in flight.

The echo fast path (what a 64 B echo costs, see shared/benchmarking.md): when a handler writes
back exactly the view it was given and nothing is queued, we write two SQEs copied from a
per-connection template -- a SEND with ``MSG_WAITALL`` (the kernel finishes short sends
itself), linked (``IOSQE_IO_LINK``) to the next RECV. A small echo is sent from the small
buffer with its completion suppressed (``IOSQE_CQE_SKIP_SUCCESS``): one completion per echoed
message; a larger one from the pool buffer, whose SEND completion gives it back. The link is
the backpressure: no RECV is issued until the peer took the bytes, so a slow reader holds at
most one buffer. For the plain :class:`EchoHandler` the server's completion loop writes that
pair itself, without calling into the handler (see ``UringServer.run``); the sockets are
registered files where the kernel allows. Anything else (several writes, ``bytes``,
a producer such as ``source``) takes the queued path: copy, SEND from the queue, stop receiving
above the high-water mark until the queue is down to the low-water mark, as the epoll engine
does.

Large mode (see :data:`LARGE_MIN`): an echo connection whose messages are large reads on
readiness instead -- a multishot poll, ``recv_into`` the server's one shared buffer, ``send``
at once while the bytes are in the cache -- and goes back to the pool when they are small.

Lifetime: a closed connection shuts its socket down (which completes what is in flight) and is
released -- fd closed, slot reused -- only when its last operation completed. In a
linked SEND->RECV the RECV's completion is the last one, unless the SEND fails: then the SEND's
is, and the RECV is cancelled without a completion.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import mmap
import select
import socket
import struct
from collections import deque
from collections.abc import Callable
from typing import Protocol

from fastsock.handlers.base import Buffer, Cancellable, Handler
from fastsock.handlers.echo import EchoHandler
from fastsock.stats import ServerStats
from fastsock.uring import abi
from fastsock.uring.pool import POOL_GROUP, BufferPool
from fastsock.uring.ring import SQE, Ring


class UringOwner(Protocol):
    """What a connection needs from the server that owns it (``UringServer``), and no more:
    the dependency runs one way, server -> connection."""

    ring: Ring
    pool: BufferPool  # the shared receive pool
    stats: ServerStats
    now: float  # the loop's clock, read once per batch of completions
    high_water: int
    low_water: int
    # Large mode (readiness): the one shared, page-aligned --read-size buffer, a view of it,
    # how much one read takes (min(--read-size, --high-water)) and the entry threshold.
    read_buffer: mmap.mmap
    read_view: memoryview
    read_max: int
    large_min: int

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable: ...

    def connection_released(self, conn: UringConnection) -> None: ...

    def recycle(self, bid: int) -> None: ...

    def starve(self, conn: UringConnection) -> None: ...

    def read_again(self, conn: UringConnection) -> None: ...


log = logging.getLogger(__name__)

# user_data: a RECV's is its connection's slot (>= 1) and nothing else, so the completion loop
# indexes the slot table with it as it comes: no mask and shift per message, and a slot up to
# 256 is one of CPython's cached small ints (no allocation). Every other operation's is
# op | slot, op a multiple of 2**32 (slot 0: the server's own, see fastsock.uring.server).
SLOT_MASK = (1 << 32) - 1
OP_SEND = 1 << 32  # a queued send (its completion is always posted)
OP_CHAIN_SEND = 2 << 32  # the linked small echo send (posted only on failure)
OP_CANCEL = 3 << 32  # cancels what is in flight on a connection being closed (its CQE is ignored)
OP_POLL = 4 << 32  # the multishot poll of a connection in large mode
# The pool's echo send: POOL_SEND | bid << 32 | slot (posted always: its completion gives the
# buffer back). Above every other op, so the completion loop tests it with one compare.
POOL_SEND = 1 << 48
BID_MASK = 0xFFFF
# Pool echoes up to this many bytes are copied into a small buffer of the connection's own and
# sent from there, so the pool buffer goes back at once and the SEND's completion can be skipped
# (one CQE per echo). Zero-copy from the pool with the SEND's
# completion posted (two CQEs) cost 0.74x (0.57-0.91) at 64 B here; the copy costs less than a
# CQE up to a few KiB. The small buffer is made at a connection's first small echo: 1 KiB each.
SMALL_ECHO = 1024
# Adaptive receive: after SMALL_AFTER pool RECVs in a row of <= SMALL_ECHO bytes, a connection
# RECVs into its small buffer (small_mode): SEND(small)->RECV(small), no copy and no pool
# buffer per message (what the per-connection buffers of `--uring-pool off` did, removed: see
# docs/engines.md). A RECV that fills the small buffer (a larger message is coming) sends it and
# goes back to pool RECVs.
SMALL_AFTER = 2
# Large mode (readiness, the epoll engine's data path): an echo connection whose pool RECV
# brought more than LARGE_MIN bytes (or filled a pool buffer smaller than that) stops RECVing
# into the pool. It arms one multishot IORING_OP_POLL_ADD (POLLIN) instead, and on each poll
# completion recv_into()s the server's one shared --read-size buffer and send()s the view back
# at once, while the bytes are still in the cache (a pool buffer filled in one io_uring_enter
# is sent in the next, long evicted: see docs/engines.md, issue #24). Only what the socket does
# not take is copied to the queue (sent by IORING_OP_SEND); reading stops above --high-water.
# After LARGE_LEAVE poll completions in a row that read <= SMALL_ECHO bytes each, the poll is
# cancelled and, once its last completion is in, the connection RECVs from the pool again
# (and may reach small_mode from there). Never a RECV and a poll at once: a RECV is issued
# only when no poll is armed (``polling``), and the poll only when no RECV is in flight.
LARGE_MIN = 16 * 1024
LARGE_LEAVE = 4
# Full reads one wake-up may do before the connection yields to the others: a peer that keeps
# its socket full (a flood, or TCP's large receive buffers) would otherwise hold the loop for
# as long as it sends. The rest is read in the loop's next turn (server.read_again).
LARGE_READS = 16
# POLLRDHUP: a completion whose mask has it (or POLLHUP/POLLERR) reads until EAGAIN or EOF, not
# just to the first short read: the peer's shutdown may have woken the poll together with its
# last bytes, and no later wake-up would report the EOF (a half-close test hung so).
_POLL_EVENTS = select.POLLIN | select.POLLRDHUP
_POLL_DRAIN = select.POLLRDHUP | select.POLLHUP | select.POLLERR
# The sockets stay blocking (io_uring needs no O_NONBLOCK): readiness mode's calls say so.
_DONTWAIT = socket.MSG_DONTWAIT
_SEND_NOW = socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL

_SEND_FLAGS = socket.MSG_WAITALL | socket.MSG_NOSIGNAL
# The fields of the pool's echo SEND patched per message, from SQE_ADDR: addr, len, msg_flags,
# user_data (one pack_into: the template's other bytes stay).
_PATCH = struct.Struct("<QIIQ")
_RESETS = (errno.ECONNRESET, errno.EPIPE, errno.ECANCELED, errno.ETIMEDOUT)


def _address(data: bytes) -> int:
    return ctypes.cast(data, ctypes.c_void_p).value  # type: ignore[return-value]


class UringConnection:
    """A connection: buffer, queue, watermarks and the operations it has in flight."""

    __slots__ = (
        "server",
        "slot",
        "sock",
        "fd",
        "fdx",
        "sqe_flags",
        "echo_fast",
        "fast",
        "handler",
        "_pair",
        "_recv_sqe",
        "_small",
        "_small_c",
        "_pair_small",
        "_pair_ss",
        "small_mode",
        "_smalls",
        "large",
        "polling",
        "poll_cancel",
        "missed",
        "again",
        "_rx",
        "_cur",
        "starved",
        "_in_cb",
        "_echo_n",
        "_chain_n",
        "out",
        "out_bytes",
        "recv_inflight",
        "send_inflight",
        "paused",
        "held",
        "closing",
        "shut",
        "released",
        "wants_write",
        "bytes_in",
        "bytes_out",
        "echoed",
        "progress_seen",
        "progress_at",
        "__weakref__",
    )

    def __init__(self, server: UringOwner, slot: int, sock: socket.socket, handler: Handler):
        self.server = server
        self.slot = slot
        self.sock = sock
        self.fd = fd = sock.fileno()
        # Operations name the socket by its slot in the ring's registered file table when it
        # has one (no fget/fput per operation in the kernel), else by its fd.
        ring = server.ring
        if slot < ring.files and ring.set_file(slot, fd):
            self.fdx, self.sqe_flags = slot, abi.IOSQE_FIXED_FILE
        else:
            self.fdx, self.sqe_flags = fd, 0
        fdx, fixed = self.fdx, self.sqe_flags
        self.handler = handler
        # The plain echo handler only writes back the view it is given (that is its whole
        # data_received): the server's completion loop then submits the echo itself, without
        # the two Python calls into the handler and back (see UringServer.run).
        self.echo_fast = type(handler) is EchoHandler
        # echo_fast and nothing queued, not closing, not paused: the one flag the completion
        # loop tests. Cleared wherever one of those starts, recomputed where they can end
        # (on_send, resume_reading): see _refresh_fast.
        self.fast = self.echo_fast
        self._rx: memoryview | None = None  # the view data_received is holding
        self._cur: memoryview | None = None  # all of what was received, during data_received
        self.starved = False  # on the server's list, waiting for a pool buffer (ENOBUFS)
        pool = server.pool
        # No buffer of our own: the kernel picks one of the pool for each RECV
        # (IOSQE_BUFFER_SELECT); a larger echo SEND's address, length and user_data (which
        # names the buffer) are patched per message, and its completion is posted: that is
        # when the buffer goes back to the pool.
        recv = SQE.pack(
            abi.IORING_OP_RECV, fixed | abi.IOSQE_BUFFER_SELECT,
            abi.IORING_RECVSEND_POLL_FIRST, fdx, 0, 0, pool.size, 0, slot, POOL_GROUP,
            0, 0, 0, 0,
        )  # fmt: skip
        send = SQE.pack(
            abi.IORING_OP_SEND, abi.IOSQE_IO_LINK | fixed, 0, fdx, 0, 0, 0, _SEND_FLAGS, 0,
            0, 0, 0, 0, 0,
        )  # fmt: skip
        self._pair = send + recv
        self._recv_sqe = recv
        self._small: bytearray | None = None  # see SMALL_ECHO; made when first needed
        self._small_c = None
        self._pair_small = b""
        self._pair_ss = b""
        self.small_mode = False  # the next (or in-flight) RECV is into the small buffer
        self._smalls = 0  # small pool RECVs in a row (SMALL_AFTER switches to small_mode)
        self.large = False  # large mode: reads on readiness (see LARGE_MIN)
        self.polling = False  # a multishot poll is armed (until its CQE without F_MORE)
        self.poll_cancel = False  # its cancellation is on the way: ignore its readiness
        self.missed = False  # readiness seen (or bytes left) while reading was stopped
        self.again = False  # queued to read on in the loop's next turn (LARGE_READS)
        self._in_cb = False  # inside data_received: on_recv_pool pumps when it returns
        self._echo_n = 0  # the handler echoed _rx: send it once data_received returns
        self._chain_n = 0  # bytes of the linked send in flight
        self.out: deque[bytes] = deque()
        self.out_bytes = 0
        self.recv_inflight = False
        self.send_inflight = False
        self.paused = False  # by the handler
        self.held = False  # by the watermarks
        self.closing = False  # no more reading; close once the queue is sent
        self.shut = False  # socket shut down; released when nothing is in flight
        self.released = False
        self.wants_write = self.handler.wants_write
        self.bytes_in = 0
        self.bytes_out = 0
        self.echoed = 0
        self.progress_seen = 0
        self.progress_at = server.now

    def start(self) -> None:
        self.handler.connection_made(self)
        self._pump()

    # -- Transport (what handlers call) -------------------------------------------------------
    def write(self, data: Buffer) -> None:
        if self.closing:
            return
        if data is self._rx and not self.out and not self.send_inflight:
            self._echo_n = len(data)  # sent from the buffer once data_received returns
            self._rx = None
            return
        if self._echo_n:
            self._queue(bytes(self._cur[: self._echo_n]))  # type: ignore[index]
            self._echo_n = 0
        self._queue(data if type(data) is bytes else bytes(data))

    def write_more(self, data: Buffer) -> None:
        self.write(data)

    def sendfile(
        self,
        fd: int,
        offset: int,
        count: int,
        on_done: Callable[[bool], None] | None = None,
        head: Buffer = b"",
    ) -> None:
        # --mode http (the only user) is refused with --engine uring at start-up.
        raise NotImplementedError("the io_uring engine does not send files")

    def pause_reading(self) -> None:
        self.paused = True
        self.fast = False

    def resume_reading(self) -> None:
        if self.paused:
            self.paused = False
            self._refresh_fast()
            self._pump()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable:
        return self.server.call_later(delay, callback)

    def time(self) -> float:
        return self.server.now

    def close(self) -> None:
        if self.closing:
            return
        self.closing = True
        self.fast = False
        if not self._in_cb:
            self._pump()

    def abort(self) -> None:
        self.closing = True
        self.fast = False
        self.out.clear()
        self.out_bytes = 0
        self._echo_n = 0
        self._shutdown()

    @property
    def closed(self) -> bool:
        return self.shut

    # -- completions --------------------------------------------------------------------------
    def on_send(self, res: int) -> None:
        self.send_inflight = False
        if self.shut:
            self._release_if_idle()
            return
        if res < 0:
            self._failed(-res)
            return
        item = self.out[0]
        self.bytes_out += res
        self.out_bytes -= res
        if res < len(item):  # only on a signal or error: the rest goes next
            self.out[0] = item[res:]
        else:
            self.out.popleft()
        if self.held and self.out_bytes <= self.server.low_water:
            self.held = False
        self._refresh_fast()
        self._pump()

    def on_chain_send_failed(self, res: int) -> None:
        # With IOSQE_CQE_SKIP_SUCCESS a failed send posts its CQE and the RECV linked to it is
        # cancelled *without* one (kernel commit 04c76b41, "io_uring: add option to skip CQE
        # posting"; seen here as a drain that hung): this is the chain's last completion. A
        # MSG_WAITALL send that sent part of the bytes before failing reports that count.
        self.recv_inflight = False
        self._chain_n = 0
        if self.shut:
            self._release_if_idle()
            return
        self._failed(-res if res < 0 else errno.EPIPE)

    def on_recv_pool(self, res: int, flags: int) -> None:
        """A RECV completed with a pool buffer (``flags``) or without one (EOF, error,
        ENOBUFS). Whatever happens, a buffer named here goes back to the pool exactly once:
        now, or when the echo SEND of it completes (:meth:`on_pool_send`)."""
        self.recv_inflight = False
        if self._chain_n and not self.send_inflight:  # a small echo's linked send succeeded
            self.echoed += self._chain_n
            self._chain_n = 0
        server = self.server
        bid = flags >> abi.IORING_CQE_BUFFER_SHIFT if flags & abi.IORING_CQE_F_BUFFER else -1
        if self.shut:
            if bid >= 0:
                server.recycle(bid)
            self._release_if_idle()
            return
        if res > 0:
            if bid < 0:  # small_mode: the bytes are in the small buffer
                rx = memoryview(self._small)[:res]  # type: ignore[arg-type]
                if res >= SMALL_ECHO:
                    self.small_mode = False  # filled: a larger message, back to the pool
            else:
                pool = server.pool
                start = bid * pool.size
                rx = pool.view[start : start + res]
            if self.closing:  # reading stopped at close(): drop it
                if bid >= 0:
                    server.recycle(bid)
                return self._pump()
            self._deliver(rx)
            n = self._echo_n
            if n:
                self._echo_n = 0
                if not (self.shut or self.paused or self.closing):
                    if n <= SMALL_ECHO:
                        self._submit_small_echo(n, bid)  # copied: the buffer is back
                    elif n >= server.large_min and self.echo_fast and bid >= 0:
                        self._enter_large(rx, n, bid)
                    else:
                        self._submit_pool_echo(n, bid)  # the SEND owns the buffer now
                    return
                if not self.shut:
                    self._queue(bytes(rx[:n]))
            if bid >= 0:
                server.recycle(bid)
            if self.shut:
                return
            self.bytes_in += res
            self._pump()
        elif res == 0:
            self.handler.eof_received()
            if not self.closing:
                self.paused = True
                self.fast = False
            self._pump()
        elif res == -errno.ENOBUFS:
            # The ring was empty when data arrived: grow it from the pool's reserve and try
            # again, or, with the whole pool in use, wait for a buffer to come back (the
            # server re-arms one starved connection per returned buffer, oldest first).
            server.stats.enobufs += 1
            pool = server.pool
            if pool.grow() or not pool.sending:
                # Grown; or no buffer is in a posted SEND, whose completion would wake us: the
                # ring was dry when the kernel looked, but every buffer taken then has come
                # back since (their CQEs are before this one), and with connections in
                # small_mode no more may come back to wake us: try again now.
                self._pump()
            else:
                server.starve(self)
        else:
            self._failed(-res)

    def on_pool_send(self, res: int, bid: int) -> None:
        """The echo SEND of pool buffer ``bid`` completed (the fast path handles success on
        a live connection inline, see ``UringServer.run``)."""
        self.send_inflight = False
        self.server.pool.sending -= 1
        self.server.recycle(bid)
        n = self._chain_n
        self._chain_n = 0
        if res > 0:
            self.echoed += res
        if self.shut:
            self._release_if_idle()
            return
        if res == n:
            self._refresh_fast()
            self._pump()
            return
        # A failed (or, MSG_WAITALL, short) send breaks the link: the RECV after it completes
        # with -ECANCELED, and that completion releases the connection.
        self._failed(-res if res < 0 else errno.EPIPE)

    def _make_small(self) -> None:
        """The small echo buffer and its templates, the SEND's completion skipped: SEND(small)
        linked to a RECV from the pool, and SEND(small) linked to a RECV into the small buffer
        (small_mode)."""
        self._small = bytearray(SMALL_ECHO)
        self._small_c = (ctypes.c_char * SMALL_ECHO).from_buffer(self._small)
        addr = ctypes.addressof(self._small_c)
        send = SQE.pack(
            abi.IORING_OP_SEND, abi.IOSQE_IO_LINK | abi.IOSQE_CQE_SKIP_SUCCESS | self.sqe_flags,
            0, self.fdx, 0, addr, 0, _SEND_FLAGS, OP_CHAIN_SEND | self.slot, 0, 0, 0, 0, 0,
        )  # fmt: skip
        recv_small = SQE.pack(
            abi.IORING_OP_RECV, self.sqe_flags, abi.IORING_RECVSEND_POLL_FIRST, self.fdx, 0,
            addr, SMALL_ECHO, 0, self.slot, 0, 0, 0, 0, 0,
        )  # fmt: skip
        self._pair_small = send + self._recv_sqe
        self._pair_ss = send + recv_small  # (its RECV half: _pair_ss[64:], see _put_pair)

    def _submit_small_echo(self, n: int, bid: int) -> None:
        """SEND ``n`` <= SMALL_ECHO bytes from the small buffer linked to the next RECV (into
        the small buffer in small_mode, else from the pool): copied there from pool buffer
        ``bid``, which goes back at once, or already there (``bid`` -1, small_mode). The
        completion loop's fast path written as a method."""
        if self._small is None:
            self._make_small()
        if bid >= 0:
            pool = self.server.pool
            start = bid * pool.size
            self._small[0:n] = pool.mem[start : start + n]  # type: ignore[index, union-attr]
            self.server.recycle(bid)
        off = self._put_pair(self._pair_ss if self.small_mode else self._pair_small)
        self.server.ring.sqe_u32[(off + abi.SQE_LEN) >> 2] = n
        self._chain_n = n
        self.recv_inflight = True

    def _deliver(self, rx: memoryview) -> None:
        """Hand ``rx`` (a view of a buffer the kernel fills again: valid only during the call)
        to the handler; a handler that raises is counted, logged and its connection aborted."""
        self._rx = self._cur = rx
        self._in_cb = True
        try:
            self.handler.data_received(rx)
        except Exception:
            self.server.stats.errors += 1
            log.exception("handler failed; closing the connection")
            self.abort()
        finally:
            self._rx = self._cur = None
            self._in_cb = False

    def _put_pair(self, pair: bytes | bytearray) -> int:
        """Copy a linked SEND->RECV SQE pair into the SQ ring and count both in its tail (the
        kernel reads them at the next io_uring_enter); returns the SEND's byte offset, for the
        caller to patch its length or address. The slow paths' one copy of what the completion
        loop writes inline (UringServer's run loops)."""
        ring = self.server.ring
        tail = ring.sq_tail
        if (tail - ring.u32[ring.sq_head_i]) & 0xFFFFFFFF > ring.sq_entries - 2:
            ring.enter(0)
        idx = tail & ring.sq_mask
        sqes = ring.sqe_map  # not the memoryview: see UringServer.run
        off = idx * 64
        if idx != ring.sq_mask:
            sqes[off : off + 128] = pair
        else:  # the pair would straddle the end of the SQ ring
            sqes[off : off + 64] = pair[:64]
            sqes[0:64] = pair[64:]
        ring.sq_tail = tail + 2
        return off

    def _submit_pool_echo(self, n: int, bid: int) -> None:
        """SEND ``n`` bytes of pool buffer ``bid`` linked to the next RECV (the slow-path twin
        of the pair the completion loop writes)."""
        off = self._put_pair(self._pair)
        sqes = self.server.ring.sqe_map
        _PATCH.pack_into(
            sqes,
            off + abi.SQE_ADDR,
            self.server.pool.addr(bid),
            n,
            _SEND_FLAGS,
            POOL_SEND | bid << 32 | self.slot,
        )
        self._chain_n = n
        self.recv_inflight = True
        self.send_inflight = True
        self.server.pool.sending += 1

    # -- large mode (readiness; see LARGE_MIN) -------------------------------------------------
    def _enter_large(self, rx: memoryview, n: int, bid: int) -> None:
        """Echo the ``n`` bytes of pool buffer ``bid`` (viewed by ``rx``) with a send() now,
        the rest queued; the buffer goes back, and from now on the connection reads on
        readiness: :meth:`_pump` arms its poll. No RECV is in flight (this is its completion)."""
        self.large = True
        self._smalls = 0
        self._send_now(rx[:n], n)
        self.server.recycle(bid)
        self._pump()

    def _send_now(self, view: memoryview, n: int) -> bool:
        """Echo ``view`` (``n`` bytes, nothing queued or in flight before it) with one send();
        what the socket does not take is copied to the queue. False if the connection failed."""
        try:
            sent = self.sock.send(view, _SEND_NOW)
        except BlockingIOError:
            sent = 0
        except OSError as err:
            sent = -(err.errno or errno.EIO)
        if sent == n:
            self.echoed += n
            return True
        return self._sent_part(view, n, sent)

    def _sent_part(self, view: memoryview, n: int, sent: int) -> bool:
        """An echo's send() took ``sent`` of its ``n`` bytes (negative: it failed, with that
        errno): count them and copy the rest to the queue. False if the connection failed."""
        self.bytes_in += n
        if sent < 0:
            self._failed(-sent)
            return False
        self.bytes_out += sent
        self._queue(bytes(view[sent:]))
        return True

    def on_poll(self, res: int, flags: int) -> None:
        """A completion of the multishot poll: the socket is readable (``res`` is the poll
        mask), or the poll failed or was cancelled. Without IORING_CQE_F_MORE the poll has
        ended: :meth:`_pump` arms a new one if the connection still reads on readiness, or
        RECVs from the pool if it left large mode."""
        if not flags & abi.IORING_CQE_F_MORE:
            self.polling = False
            self.poll_cancel = False
        if self.shut:
            self._release_if_idle()
            return
        if res < 0 and res != -errno.ECANCELED:
            self._failed(-res)
            return
        if res > 0 and self.large and not self.poll_cancel:
            if self.paused or self.held or self.closing:
                self.missed = True  # read when reading resumes (_pump_large)
            else:
                self._on_readable(res & _POLL_DRAIN)
                return
        self._pump()

    def _pump_large(self) -> None:
        """_pump's reading step in large mode, or while the poll of large mode is still armed."""
        if not self.large:  # leaving large mode: the poll must end before a RECV is issued
            if self.polling and not self.poll_cancel:
                self.poll_cancel = True
                self.server.ring.prep(
                    abi.IORING_OP_ASYNC_CANCEL, -1, OP_POLL | self.slot, 0, OP_CANCEL | self.slot
                )
            return
        if self.paused or self.held:
            return  # the poll stays armed; what it reports meanwhile sets ``missed``
        if not self.polling:
            # Arming checks readiness at once (bytes already waiting complete it).
            self.server.ring.prep(
                abi.IORING_OP_POLL_ADD,
                self.fdx,
                0,
                abi.IORING_POLL_ADD_MULTI,
                OP_POLL | self.slot,
                flags=self.sqe_flags,
                op_flags=_POLL_EVENTS,
            )
            self.polling = True
            self.missed = False
        elif self.missed:
            # The poll fired (or bytes were left) while reading was stopped: it will not fire
            # again for bytes already waiting, so read now.
            self.missed = False
            self._on_readable(True)

    def _on_readable(self, drain: int | bool, first: int = -1) -> None:
        """Read and echo what is waiting (``drain``: until EAGAIN or EOF, see _POLL_DRAIN);
        count the small reads that lead out of large mode. ``first``: what the server's loop
        read already (see UringServer.run), if it did."""
        total = self._read_ready(drain, first)
        if total < 0 or self.shut:
            return
        if total:
            if total <= SMALL_ECHO:
                self._smalls += 1
                if self._smalls >= LARGE_LEAVE:
                    self.large = False  # _pump cancels the poll; RECVs once it has ended
                    self._smalls = 0
            else:
                self._smalls = 0
        self._pump()

    def _read_ready(self, drain: int | bool, first: int = -1) -> int:
        """recv_into the server's shared buffer and echo each read at once, until the socket
        is empty (a short read, unless ``drain``, or EAGAIN: the multishot poll fires again
        for bytes that arrive later), the queue reaches --high-water (``held``; ``missed``
        reads the rest when it drains), EOF, or an error. Returns the bytes read, or -1 if
        the connection failed. ``first`` >= 0: the first read is done, with nothing queued
        (its bytes, ``first`` of them, are in the buffer)."""
        server = self.server
        recv_into = self.sock.recv_into
        buf = server.read_buffer
        total = 0
        reads = 0
        while True:
            if reads == LARGE_READS:
                server.read_again(self)  # read on in the loop's next turn, after the others
                return total
            reads += 1
            nbytes = server.read_max
            if self.out:
                room = server.high_water - self.out_bytes
                if room <= 0:
                    if not self.held:
                        self.held = True
                        server.stats.read_pauses += 1
                    self.missed = True
                    return total
                if room < nbytes:
                    nbytes = room
            if first >= 0:
                n, first = first, -1
            else:
                try:
                    n = recv_into(buf, nbytes, _DONTWAIT)
                except BlockingIOError:
                    return total
                except OSError as err:
                    self._failed(err.errno or errno.EIO)
                    return -1
            if not n:
                self.handler.eof_received()
                if not self.closing:
                    self.paused = True
                    self.fast = False
                return total
            total += n
            view = server.read_view[:n]
            if self.out or self.send_inflight:
                self.bytes_in += n
                self._queue(bytes(view))
            elif not self._send_now(view, n):
                return -1
            if (n < nbytes and not drain) or self.shut:
                return total

    def read_on(self) -> None:
        """The loop's next turn after :data:`LARGE_READS` full reads: read on, if still due."""
        self.again = False
        if not self.shut and self.large:
            self.missed = True  # bytes are waiting that no new poll completion will report
            self._pump()

    # -- internals ----------------------------------------------------------------------------
    def _queue(self, data: bytes) -> None:
        if not data:
            return
        self.out.append(data)
        self.fast = False
        self.out_bytes += len(data)
        stats = self.server.stats
        if self.out_bytes > stats.peak_buffered:
            stats.peak_buffered = self.out_bytes
        if not self.held and self.out_bytes > self.server.high_water:
            self.held = True
            stats.read_pauses += 1

    def _refresh_fast(self) -> None:
        self.fast = self.echo_fast and not (self.out or self.closing or self.paused)

    def _pump(self) -> None:
        """Start what can start: the producer, the next send, the next receive, or the close."""
        if self.shut:
            return
        if self.wants_write and not self.out and not self.send_inflight and not self.closing:
            self.handler.writable()
        if self.out and not self.send_inflight:
            item = self.out[0]
            self.server.ring.prep(
                abi.IORING_OP_SEND,
                self.fdx,
                _address(item),
                len(item),
                OP_SEND | self.slot,
                flags=self.sqe_flags,
                op_flags=_SEND_FLAGS,
            )
            self.send_inflight = True
        if self.closing:
            if not self.out and not self.send_inflight:
                self._shutdown()
            return
        if self.large or self.polling:
            self._pump_large()
            return
        if self.recv_inflight or self.paused or self.held or self.starved:
            return
        if self.small_mode:
            self.server.ring.prep(
                abi.IORING_OP_RECV,
                self.fdx,
                ctypes.addressof(self._small_c),  # type: ignore[arg-type]
                SMALL_ECHO,
                self.slot,
                flags=self.sqe_flags,
                ioprio=abi.IORING_RECVSEND_POLL_FIRST,
            )
        else:
            self.server.ring.prep(
                abi.IORING_OP_RECV,
                self.fdx,
                0,
                self.server.pool.size,
                self.slot,
                flags=self.sqe_flags | abi.IOSQE_BUFFER_SELECT,
                ioprio=abi.IORING_RECVSEND_POLL_FIRST,
                buf_group=POOL_GROUP,
            )
        self.recv_inflight = True

    def _failed(self, err: int) -> None:
        if err in _RESETS:
            self.server.stats.resets += 1
        else:
            self.server.stats.errors += 1
            log.warning("connection: %s", errno.errorcode.get(err, err))
        self.abort()

    def _shutdown(self) -> None:
        if self.shut:
            return
        self.shut = True
        self.closing = True
        self.fast = False
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # the peer sees the close now
        except OSError:
            pass  # not connected any more
        if self.recv_inflight or self.send_inflight or self.polling:
            # Cancel what is in flight, large mode's poll too: shutdown() alone does not
            # complete a MSG_WAITALL send stuck on a socket the peer reset (measured: it hung
            # the drain). The last CQE of the cancelled operations releases the connection.
            by = abi.IORING_ASYNC_CANCEL_FD | abi.IORING_ASYNC_CANCEL_ALL
            if self.sqe_flags:
                by |= abi.IORING_ASYNC_CANCEL_FD_FIXED
            self.server.ring.prep(
                abi.IORING_OP_ASYNC_CANCEL,
                self.fdx,
                0,
                0,
                OP_CANCEL | self.slot,
                op_flags=by,
            )
        self._release_if_idle()

    def _release_if_idle(self) -> None:
        if self.released or self.recv_inflight or self.send_inflight or self.polling:
            return
        self.released = True
        if self.sqe_flags:
            # The table's reference would keep the socket open past close().
            self.server.ring.set_file(self.slot, -1)
        self.sock.close()
        self.out.clear()
        self.out_bytes = 0
        self.handler.connection_lost()
        self.server.connection_released(self)
