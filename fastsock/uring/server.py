"""The io_uring engine's server: the epoll server's listener, limits, stats, idle sweep and
drain, over a :class:`~fastsock.uring.ring.Ring` instead of an event loop.

What is shared with :mod:`fastsock.server`: :class:`~fastsock.server.ServerConfig`, the
listening socket and socket-file care (:mod:`fastsock.address`), the handlers, the stats line
(:class:`~fastsock.stats.ServerStats`), the timer objects (:class:`~fastsock.loop.Timer`) and
the policies (accept-and-close over ``--max-conns``; and, in one copy in
:class:`fastsock.lifecycle.ServerLifecycle`, the EMFILE reserve fd, the idle sweep by byte
counters, drain then close on the second signal, the stats of a closed connection).
What differs is how things happen:

- accepting is one multishot ACCEPT; timers are IORING_OP_TIMEOUTs; signals arrive as a READ of
  the ``signal.set_wakeup_fd`` pipe; so the loop is a single ``io_uring_enter`` that submits
  everything prepared since the last one and waits for at least one completion.
- completions are read straight from the mapped CQ ring (see :meth:`UringServer.run`).
"""

from __future__ import annotations

import ctypes
import errno
import heapq
import logging
import os
import resource
import select
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from signal import SIG_IGN, SIGINT, SIGTERM
from typing import TextIO

from fastsock.address import bound_endpoint, listen, remove_unix_file, unix_file_identity
from fastsock.buffer import page_aligned_buffer
from fastsock.handlers import MODES, Handler
from fastsock.lifecycle import ServerLifecycle
from fastsock.loop import SavedSignals, Timer
from fastsock.server import ACCEPT_PAUSE_S, ServerConfig
from fastsock.stats import ServerStats
from fastsock.uring import abi
from fastsock.uring.connection import (
    _DONTWAIT,
    _PATCH,
    _POLL_DRAIN,
    _SEND_FLAGS,
    _SEND_NOW,
    BID_MASK,
    LARGE_MIN,
    OP_CHAIN_SEND,
    OP_POLL,
    OP_SEND,
    POOL_SEND,
    SLOT_MASK,
    SMALL_AFTER,
    SMALL_ECHO,
    UringConnection,
)
from fastsock.uring.pool import BufferPool, PoolError, parse_pool
from fastsock.uring.ring import Ring, UringUnavailable

log = logging.getLogger(__name__)

# Modes the engine serves: the handlers that need no sendfile.
MODES_SERVED = ("echo", "discard", "source")

# Server operations: user_data = n << 32, slot 0 (a connection's RECV is its slot alone, its
# other operations are OP_* | slot with OP_* of 1-3 << 32: see fastsock.uring.connection).
_ACCEPT = 8 << 32
_SIGNAL = 9 << 32
_TIMEOUT = 10 << 32
_CANCEL = 11 << 32
_LISTENER_READY = 12 << 32

_SIGNAL_BUF = 64


class UringServer(ServerLifecycle):
    """Same contract as :class:`fastsock.server.Server`: binds in ``__init__``, serves in
    :meth:`run` until :meth:`shutdown` (or a signal), prints :meth:`print_stats`."""

    def __init__(self, config: ServerConfig, sock: socket.socket | None = None) -> None:
        if config.handler_factory is None and config.mode not in MODES_SERVED:
            raise UringUnavailable(
                f"--engine uring serves {', '.join(MODES_SERVED)}; --mode {config.mode} needs "
                "--engine epoll"
            )
        self.config = config
        try:
            pool_spec = parse_pool(config.uring_pool, config.read_size)
        except PoolError as err:
            raise UringUnavailable(str(err)) from None
        self.ring = Ring(entries=1024, cq_entries=8192)
        try:
            self.pool = BufferPool(self.ring, pool_spec)
        except BaseException:
            self.ring.close()
            raise
        # Connections waiting for a pool buffer (their RECV found the pool dry), oldest first.
        self._starved: deque[UringConnection] = deque()
        # Large-mode connections that stopped after LARGE_READS full reads: read on next turn.
        self._again: deque[UringConnection] = deque()
        # Registered files, one per connection slot (slot 0 unused): at most --max-conns
        # connections hold slots, and the kernel caps the table at RLIMIT_NOFILE. Optional:
        # connections whose slot is outside the table (or all, if the kernel refuses) use fds.
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        table = config.max_conns + 1
        if nofile != resource.RLIM_INFINITY:
            table = min(table, nofile)
        self.ring.register_files(max(1, table))
        self.stats = ServerStats(pool=True)
        self.now = time.monotonic()
        self.high_water = config.high_water
        self.low_water = config.low_water
        # Large mode's read buffer (see LARGE_MIN): one for every connection, page-aligned
        # like the epoll engine's; its pages cost RSS only once a connection reads into them.
        self.read_buffer = page_aligned_buffer(config.read_size)
        self.read_view = memoryview(self.read_buffer)
        self.read_max = min(config.read_size, config.high_water)
        # A pool RECV of this many bytes (more than LARGE_MIN, or a whole smaller buffer)
        # switches an echo connection to large mode.
        self.large_min = min(LARGE_MIN + 1, self.pool.size)
        if not config.uring_large:  # every size on the pool's RECVs (a benchmark's variant)
            self.large_min = 1 << 62
        self._handler_factory: Callable[[], Handler] = config.handler_factory or MODES[config.mode]
        # Slot 0 stands for the server's own operations.
        self._slots: list[UringConnection | None] = [None]
        self._free: list[int] = []
        self.connections: set[UringConnection] = set()
        self._timers: list[Timer] = []
        self._armed: list[float] = []  # deadlines of the TIMEOUTs in flight
        self._timespecs: list[abi.Timespec] = []  # kept alive until their TIMEOUT completes
        self._stopped = False
        self._draining = False
        self._accepting = False
        self._listener_open = True
        self._reserve_fd: int | None = self._open_reserve_fd()
        self._signals: tuple[int, ...] = ()
        self._saved_signals = SavedSignals()
        self._sig_r, self._sig_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._sig_buf = bytearray(_SIGNAL_BUF)
        self._sig_buf_c = (ctypes.c_char * _SIGNAL_BUF).from_buffer(self._sig_buf)
        try:
            if sock is None:
                sock = listen(config.endpoint, config.backlog, config.unix_mode)
        except BaseException:
            self._close_ring_and_pipe()
            raise
        sock.setblocking(False)  # the reserve-fd path accepts synchronously
        self._lsock = sock
        self.endpoint = bound_endpoint(sock, config.endpoint)
        self._unix_identity = None
        if self.endpoint.is_unix and not self.endpoint.is_abstract:
            self._unix_identity = unix_file_identity(self.endpoint.path)
        self._arm_accept()
        if config.idle_timeout > 0:
            self._sweep_every(max(0.02, min(1.0, config.idle_timeout / 8)))

    # -- timers -------------------------------------------------------------------------------
    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(time.monotonic() + delay, callback)
        heapq.heappush(self._timers, timer)
        self._arm_timeout()
        return timer

    def _sweep_every(self, interval: float) -> None:
        def tick() -> None:
            self._sweep_idle()
            self.call_later(interval, tick)

        self.call_later(interval, tick)

    def _arm_timeout(self) -> None:
        """Keep a TIMEOUT in flight that fires no later than the earliest timer."""
        if not self._timers:
            return
        when = self._timers[0].when
        if self._armed and min(self._armed) <= when:
            return
        delay = max(0.0, when - time.monotonic())
        ts = abi.Timespec(int(delay), int((delay % 1.0) * 1e9))
        self._timespecs.append(ts)
        self._armed.append(when)
        self.ring.prep(abi.IORING_OP_TIMEOUT, -1, ctypes.addressof(ts), 1, _TIMEOUT)

    def _on_timeout(self) -> None:
        if self._armed:
            self._armed.remove(min(self._armed))
            self._timespecs.pop(0)
        now = self.now
        timers = self._timers
        while timers and timers[0].when <= now:
            timer = heapq.heappop(timers)
            if not timer.cancelled:
                timer.callback()
        self._arm_timeout()

    # -- accepting ----------------------------------------------------------------------------
    def _arm_accept(self) -> None:
        if self._accepting or self._draining:
            return
        self._accepting = True
        self.ring.prep(
            abi.IORING_OP_ACCEPT,
            self._lsock.fileno(),
            0,
            0,
            _ACCEPT,
            ioprio=abi.IORING_ACCEPT_MULTISHOT,
            op_flags=socket.SOCK_CLOEXEC,
        )

    def _wait_for_listener(self) -> None:
        self.ring.prep(
            abi.IORING_OP_POLL_ADD,
            self._lsock.fileno(),
            0,
            0,
            _LISTENER_READY,
            op_flags=select.POLLIN,
        )
        self._accepting = True  # the poll stands for the ACCEPT until it fires

    def _on_listener_ready(self, res: int) -> None:
        self._accepting = False
        if self._listener_open:
            self._arm_accept()

    def _on_accept(self, res: int, flags: int) -> None:
        if not flags & abi.IORING_CQE_F_MORE:
            self._accepting = False  # the multishot ended: re-armed below unless paused
        if res < 0:
            self._accept_failed(-res)
            return
        self.stats.accepted += 1
        sock = socket.socket(fileno=res)
        if len(self.connections) >= self.config.max_conns or self._draining:
            # Accept and close at once: a connection left in the backlog would hang its client.
            self.stats.rejected += 1
            sock.close()
        else:
            self._start_connection(sock)
        if not self._accepting:
            self._arm_accept()

    def _start_connection(self, sock: socket.socket) -> None:
        if not self.endpoint.is_unix:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.config.sndbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.config.sndbuf)
        slot = self._free.pop() if self._free else len(self._slots)
        conn = UringConnection(self, slot, sock, self._handler_factory())
        if slot == len(self._slots):
            self._slots.append(conn)
        else:
            self._slots[slot] = conn
        self.connections.add(conn)
        if len(self.connections) > self.stats.peak_conns:
            self.stats.peak_conns = len(self.connections)
        conn.start()

    def _accept_failed(self, err: int) -> None:
        if err == errno.ECANCELED and self._draining:
            return
        self.stats.accept_errors += 1
        if err in (errno.EMFILE, errno.ENFILE) and self._reserve_fd is not None:
            # Out of descriptors: free the reserve, accept the waiting connection and close it
            # at once (its client gets a clean EOF instead of hanging), take the reserve back.
            os.close(self._reserve_fd)
            self._reserve_fd = None
            try:
                sock, _ = self._lsock.accept()
                sock.close()
                self.stats.rejected += 1
            except OSError:
                pass
            self._reserve_fd = self._open_reserve_fd()
            log.warning("out of file descriptors (%s); shed a connection", os.strerror(err))
            if self._reserve_fd is not None:
                # io_uring's ACCEPT takes a descriptor before it looks for a connection, so
                # re-arming it now would fail at once, over and over. Wait until a connection
                # is waiting (as the epoll engine does): then accept or shed it.
                self._wait_for_listener()
                return
        elif err in (errno.ECONNABORTED, errno.EPROTO, errno.EINTR, errno.EAGAIN):
            self._arm_accept()
            return
        log.warning(
            "accept failed: %s; pausing accepts for %.1fs", os.strerror(err), ACCEPT_PAUSE_S
        )
        self.call_later(ACCEPT_PAUSE_S, self._arm_accept)

    # -- connections --------------------------------------------------------------------------
    def connection_released(self, conn: UringConnection) -> None:
        self.connections.discard(conn)
        self._slots[conn.slot] = None
        self._free.append(conn.slot)
        self._count_closed(conn)

    def recycle(self, bid: int) -> None:
        """Pool buffer ``bid`` is free again: back to the kernel, and a starved connection
        (if any) gets its RECV back."""
        self.pool.put(bid)
        if self._starved:
            self._wake_starved()

    def starve(self, conn: UringConnection) -> None:
        conn.starved = True
        self._starved.append(conn)

    def read_again(self, conn: UringConnection) -> None:
        if not conn.again:
            conn.again = True
            self._again.append(conn)

    def _read_on(self) -> None:
        """This turn's large-mode connections with more to read (queued by read_again during
        the last turn; those that queue again now wait for the next)."""
        again = self._again
        for _ in range(len(again)):
            again.popleft().read_on()

    def _wake_starved(self) -> None:
        """Re-arm the RECV of the longest-starved connection that still wants one (one per
        returned buffer: more would find the pool dry again)."""
        starved = self._starved
        while starved:
            conn = starved.popleft()
            conn.starved = False
            if conn.shut:
                conn._release_if_idle()
                continue
            conn._pump()
            if conn.recv_inflight:
                return

    # -- the engine's steps of ServerLifecycle -------------------------------------------------
    def _stop(self) -> None:
        self._stopped = True

    def _schedule(self, delay: float, callback: Callable[[], None]) -> Timer:
        return self.call_later(delay, callback)

    def _clock(self) -> float:
        return self.now

    # -- signals ------------------------------------------------------------------------------
    def install_signal_handlers(
        self, signals: tuple[int, ...] = (SIGTERM, SIGINT), *, ignore_after: bool = False
    ) -> None:
        """Drain on the first of ``signals``, close everything on the second (as
        :meth:`fastsock.server.Server.install_signal_handlers`)."""
        self._saved_signals.wake(self._sig_w)
        for signum in signals:
            self._saved_signals.handle(
                signum, _ignore_in_handler, SIG_IGN if ignore_after else None
            )
        self._signals = signals
        self._arm_signal_read()

    def _arm_signal_read(self) -> None:
        self.ring.prep(
            abi.IORING_OP_READ,
            self._sig_r,
            ctypes.addressof(self._sig_buf_c),
            _SIGNAL_BUF,
            _SIGNAL,
            off=(1 << 64) - 1,  # -1: the pipe's current position
        )

    def _on_signal_read(self, res: int) -> None:
        if res > 0:
            # set_wakeup_fd writes each signal's number as one byte.
            for signum in self._sig_buf[:res]:
                if signum in self._signals:
                    self._on_signal(signum)
        if not self._stopped:
            self._arm_signal_read()

    def _close_listener(self) -> None:
        if not self._listener_open:
            return
        self._listener_open = False
        if self._accepting:
            # The ACCEPT (or the poll standing for it) in flight holds the listener: cancel it
            # (its CQE says -ECANCELED; the cancel of the other one finds nothing).
            self.ring.prep(abi.IORING_OP_ASYNC_CANCEL, -1, _ACCEPT, 0, _CANCEL)
            self.ring.prep(abi.IORING_OP_ASYNC_CANCEL, -1, _LISTENER_READY, 0, _CANCEL)
            self._accepting = False
        self._lsock.close()
        if self._unix_identity is not None:
            remove_unix_file(self.endpoint.path, self._unix_identity)
            self._unix_identity = None

    def run(self) -> None:
        """Serve until stopped. The completion loop is written out here, not in methods, on
        purpose: it runs once per echoed message and every attribute lookup shows in a
        profile. A RECV completes into a pool buffer (``flags`` names it) or, in small_mode,
        into the connection's small buffer (no buffer flag); the echo is a linked SEND->RECV
        pair from the connection's templates, so sends stay in order and a slow reader holds
        one buffer. A larger echo's SEND completion is posted: it gives the pool buffer back
        (two CQEs per echo); a small echo's is skipped (one). In large mode a poll completion
        is the echo: recv_into the shared buffer and send the view at once, written out here
        for the common state (1.055x msgs/s, 0.944x the CPU per message at 8,000 x 64 KiB
        against the method calls it replaced: docs/engines.md)."""
        ring = self.ring
        pool = self.pool
        u32, i32, u64 = ring.u32, ring.i32, ring.u64
        head_i, tail_i, mask = ring.cq_head_i, ring.cq_tail_i, ring.cq_mask
        q0, w0 = ring.cqes_off // 8, ring.cqes_off // 4
        cq_n = mask + 1
        # The mmap itself, not a memoryview of it: slicing a memoryview allocates a new one, a
        # GC-tracked object, and 700 of those start a collection (measured: 7% of the
        # instructions in the loop); an mmap slice assignment allocates nothing.
        sqes, sqe_u32 = ring.sqe_map, ring.sqe_u32
        # Per SQ position: the slice an echo pair fills and the words patched in its SEND, so
        # the fast path does no offset arithmetic (each int op allocates above 256).
        sq_last = ring.sq_mask
        pair_at = [slice(i * 64, i * 64 + 128) for i in range(sq_last + 1)]
        patch_at = [i * 64 + abi.SQE_ADDR for i in range(sq_last + 1)]
        len_at = [(i * 64 + abi.SQE_LEN) >> 2 for i in range(sq_last + 1)]
        small = SMALL_ECHO
        small_at = [slice(0, n) for n in range(SMALL_ECHO + 1)]  # no slice object per copy
        small_after = SMALL_AFTER - 1
        large = self.large_min  # a RECV this large leaves the fast path: large mode
        mem = pool.mem
        slots = self._slots
        not_recv = OP_SEND  # the lowest user_data that is not a RECV's (a local: LOAD_FAST)
        pool_send = POOL_SEND
        shift = abi.IORING_CQE_BUFFER_SHIFT
        buffer_flag = abi.IORING_CQE_F_BUFFER
        base, size = pool.base, pool.size
        patch = _PATCH.pack_into
        send_flags = _SEND_FLAGS
        starved = self._starved
        # pool.put, written out: the ring entry and the published tail.
        entry = pool._entry
        ring_map = pool.ring_map
        tail_u16 = pool._tail_u16
        tail_word = abi.BUF_RING_TAIL // 2
        bmask = pool.mask
        entry_at = [slice(i * 16, i * 16 + abi.BUF_ENTRY_WRITE) for i in range(pool.entries)]
        enter = ring.enter
        monotonic = time.monotonic
        again = self._again
        # Large mode's echo (the OP_POLL branch below): the socket methods unbound (no bound
        # method object per call), the shared read buffer and the poll's flags.
        op_poll, more, drain = OP_POLL, abi.IORING_CQE_F_MORE, _POLL_DRAIN
        recv_into, send = socket.socket.recv_into, socket.socket.send
        read_buffer, read_view, read_max = self.read_buffer, self.read_view, self.read_max
        dontwait, send_now = _DONTWAIT, _SEND_NOW
        try:
            while not self._stopped:
                enter(0 if again else 1)  # connections with bytes waiting: do not sleep
                self.now = monotonic()
                if again:
                    self._read_on()
                head = u32[head_i]
                tail = u32[tail_i]
                while head != tail:
                    # Read the completions in bulk, up to the end of the ring: three list
                    # conversions per batch instead of index arithmetic (and int objects) per
                    # completion; the head is published once per batch.
                    a = head & mask
                    b = min(cq_n, a + ((tail - head) & 0xFFFFFFFF))
                    sq_limit = ring.sq_limit() - 2
                    for ud, res, flags in zip(
                        u64[q0 + 2 * a : q0 + 2 * b : 2].tolist(),
                        i32[w0 + 4 * a + 2 : w0 + 4 * b : 4].tolist(),
                        u32[w0 + 4 * a + 3 : w0 + 4 * b : 4].tolist(),
                        strict=True,
                    ):
                        if ud < not_recv:  # a RECV: ud is the connection's slot
                            conn = slots[ud]
                            if (
                                res > 0
                                and conn.fast  # type: ignore[union-attr]
                                and res < large
                                and (res > small or conn._small is not None)  # type: ignore[union-attr]
                            ):
                                # The previous echo's SEND is done (the link started this RECV
                                # after it): count its bytes (0 after a posted SEND: counted
                                # there).
                                conn.echoed += conn._chain_n  # type: ignore[union-attr]
                                conn._chain_n = res  # type: ignore[union-attr]
                                t = ring.sq_tail
                                if t > sq_limit:
                                    enter(0)
                                    sq_limit = ring.sq_limit() - 2
                                i = t & sq_last
                                if not flags & buffer_flag:
                                    # small_mode: the bytes are in the small buffer already.
                                    # Less than it holds: SEND(small)->RECV(small) again; full:
                                    # a larger message is coming, the next RECV from the pool.
                                    if res < small:
                                        pair = conn._pair_ss  # type: ignore[union-attr]
                                    else:
                                        pair = conn._pair_small  # type: ignore[union-attr]
                                        conn.small_mode = False  # type: ignore[union-attr]
                                    if i != sq_last:
                                        sqes[pair_at[i]] = pair
                                    else:  # the pair would straddle the end of the SQ ring
                                        sqes[i * 64 : i * 64 + 64] = pair[:64]
                                        sqes[0:64] = pair[64:]
                                    sqe_u32[len_at[i]] = res
                                elif res <= small:
                                    # A small echo: copy out of pool buffer bid, give it back,
                                    # the skip-success pair from the small buffer; after
                                    # SMALL_AFTER in a row, RECV into the small buffer too.
                                    start = (flags >> shift) * size
                                    conn._small[small_at[res]] = mem[start : start + res]  # type: ignore[union-attr]
                                    pt = pool.tail
                                    ring_map[entry_at[pt & bmask]] = entry[flags >> shift]
                                    pt = (pt + 1) & 0xFFFF
                                    pool.tail = pt
                                    tail_u16[tail_word] = pt
                                    if conn._smalls < small_after:  # type: ignore[union-attr]
                                        conn._smalls += 1  # type: ignore[union-attr]
                                        pair = conn._pair_small  # type: ignore[union-attr]
                                    else:
                                        conn._smalls = 0  # type: ignore[union-attr]
                                        conn.small_mode = True  # type: ignore[union-attr]
                                        pair = conn._pair_ss  # type: ignore[union-attr]
                                    if i != sq_last:
                                        sqes[pair_at[i]] = pair
                                    else:
                                        sqes[i * 64 : i * 64 + 64] = pair[:64]
                                        sqes[0:64] = pair[64:]
                                    sqe_u32[len_at[i]] = res
                                    if starved:
                                        self._wake_starved()
                                else:
                                    # Echo pool buffer bid from the connection's template, the
                                    # SEND patched to the buffer; its completion is posted and
                                    # gives the buffer back. (Skipping it, the buffer held until
                                    # the connection's next RECV completed, at most half the pool
                                    # held so: 1.01x (0.89-1.14) the CPU per message at 64 KiB x
                                    # 32, 1.16x (1.09-1.26) at 8,000 x 64 KiB, where the held
                                    # buffers wait a whole round trip and the rest run dry.)
                                    conn._smalls = 0  # type: ignore[union-attr]
                                    bid = flags >> shift
                                    pair = conn._pair  # type: ignore[union-attr]
                                    conn.send_inflight = True  # type: ignore[union-attr]
                                    pool.sending += 1
                                    ud = pool_send | bid << 32 | ud
                                    if i != sq_last:
                                        sqes[pair_at[i]] = pair
                                    else:
                                        sqes[i * 64 : i * 64 + 64] = pair[:64]
                                        sqes[0:64] = pair[64:]
                                    patch(sqes, patch_at[i], base + bid * size, res, send_flags, ud)
                                ring.sq_tail = t + 2
                            else:
                                conn.on_recv_pool(res, flags)  # type: ignore[union-attr]
                        elif ud >= pool_send:
                            slot = ud & SLOT_MASK
                            conn = slots[slot]
                            if res == conn._chain_n and conn.fast:  # type: ignore[union-attr]
                                # Sent: the buffer goes back (pool.put written out).
                                conn.echoed += res  # type: ignore[union-attr]
                                conn._chain_n = 0  # type: ignore[union-attr]
                                conn.send_inflight = False  # type: ignore[union-attr]
                                pool.sending -= 1
                                pt = pool.tail
                                ring_map[entry_at[pt & bmask]] = entry[(ud >> 32) & BID_MASK]
                                pt = (pt + 1) & 0xFFFF
                                pool.tail = pt
                                tail_u16[tail_word] = pt
                                if starved:
                                    self._wake_starved()
                            else:
                                conn.on_pool_send(res, (ud >> 32) & BID_MASK)  # type: ignore[union-attr]
                        else:
                            slot = ud & SLOT_MASK
                            op = ud - slot
                            if op == op_poll:
                                conn = slots[slot]
                                if (
                                    res > 0
                                    and flags & more
                                    and not res & drain
                                    and conn.fast  # type: ignore[union-attr]
                                    and conn.large  # type: ignore[union-attr]
                                    and not conn.send_inflight  # type: ignore[union-attr]
                                ):
                                    # Large mode's common state, written out as the epoll
                                    # engine's _echo_common is: one recv, one send of the view
                                    # (_read_ready's first round); anything else, there.
                                    sock = conn.sock  # type: ignore[union-attr]
                                    try:
                                        n = recv_into(sock, read_buffer, read_max, dontwait)
                                    except BlockingIOError:
                                        continue
                                    except OSError as err:
                                        conn._failed(err.errno or errno.EIO)  # type: ignore[union-attr]
                                        continue
                                    if small < n < read_max:
                                        view = read_view[:n]
                                        try:
                                            sent = send(sock, view, send_now)
                                        except BlockingIOError:
                                            sent = 0
                                        except OSError as err:
                                            sent = -(err.errno or errno.EIO)
                                        conn._smalls = 0  # type: ignore[union-attr]
                                        if sent == n:
                                            conn.echoed += n  # type: ignore[union-attr]
                                        elif conn._sent_part(view, n, sent):  # type: ignore[union-attr]
                                            conn._pump()  # type: ignore[union-attr]
                                    else:
                                        conn._on_readable(False, n)  # type: ignore[union-attr]
                                else:
                                    conn.on_poll(res, flags)  # type: ignore[union-attr]
                            elif slot == 0:
                                self._on_server_cqe(op, res, flags)
                            elif op == OP_SEND:
                                slots[slot].on_send(res)  # type: ignore[union-attr]
                            elif op == OP_CHAIN_SEND:
                                slots[slot].on_chain_send_failed(res)  # type: ignore[union-attr]
                    head = (head + b - a) & 0xFFFFFFFF
                    u32[head_i] = head
                    tail = u32[tail_i]
        finally:
            self._close_all_quietly()

    def _on_server_cqe(self, op: int, res: int, flags: int) -> None:
        if op == _ACCEPT:
            self._on_accept(res, flags)
        elif op == _SIGNAL:
            self._on_signal_read(res)
        elif op == _TIMEOUT:
            self._on_timeout()
        elif op == _LISTENER_READY:
            self._on_listener_ready(res)
        # _CANCEL: nothing to do; the ACCEPT it cancelled reports -ECANCELED itself.

    def _close_all_quietly(self) -> None:
        for conn in list(self.connections):
            conn.sock.close()
        self.connections.clear()
        if self._listener_open:
            self._listener_open = False
            self._lsock.close()
            if self._unix_identity is not None:
                remove_unix_file(self.endpoint.path, self._unix_identity)
        if self._reserve_fd is not None:
            os.close(self._reserve_fd)
            self._reserve_fd = None
        self._saved_signals.restore()
        self._close_ring_and_pipe()

    def _close_ring_and_pipe(self) -> None:
        # Closing the ring cancels whatever is still in flight; the kernel drops its file refs.
        if self.ring.fd >= 0:
            self.ring.close()
        self.pool.close()  # after the ring: the kernel may fill a buffer until then
        for fd in (self._sig_r, self._sig_w):
            if fd >= 0:
                os.close(fd)
        self._sig_r = self._sig_w = -1

    def print_stats(self, stream: TextIO = sys.stderr) -> None:
        print(self.stats.line(), file=stream, flush=True)


def _ignore_in_handler(signum: int, frame: object) -> None:
    # The wakeup fd already told the ring; the loop acts on the byte it reads.
    pass
