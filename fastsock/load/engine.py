"""The client event loop of one load process: drive connections, verify, count, time.

One process runs one :class:`Engine` over its share of the connections, on the timeline of
:mod:`fastsock.load.schedule` (warm-up, measured window, open-loop due times), measuring the
:class:`~fastsock.load.window.Window` and counting errors in an
:class:`~fastsock.load.verify.ErrorLog`. This class is the echo workload and what every stream
workload shares (connections, sending, the loop's clock: :meth:`Engine._turn`); the others
subclass it with only what differs (``stream_engine`` for send/recv, ``http_engine``).

Closed loop: every connection keeps ``depth`` messages in flight; each completion sends the next
message at once. Open loop: messages go out on the schedule, and those still unanswered when the
window closes are recorded with their age at that moment (a lower bound of their latency) and
counted as ``incomplete``, so a stall at the very end is not lost either.

The hot path is deliberately plain and inlined (see ``_run_echo``): at 64 B the Python work per
message is what limits the client, so there is no per-message allocation besides two memoryview
slices, no per-message method call in the common case, and dispatch goes straight through
``select.epoll`` by file descriptor instead of ``selectors`` (whose SelectorKey lists cost ~20%
at 64 B, see benchmarking.md).
"""

from __future__ import annotations

import errno
import logging
import select
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fastsock.load.conn import close_cleanly
from fastsock.load.histogram import FOLD_AT, LatencyRecorder
from fastsock.load.http import HttpTarget
from fastsock.load.pattern import Pattern
from fastsock.load.schedule import DueTimes, phases
from fastsock.load.verify import ErrorLog
from fastsock.load.window import (
    LATENCY_WORKLOADS,
    Window,
    age_unanswered,
    messages_and_bytes,
    window_counts,
    worker_result,
)

log = logging.getLogger(__name__)

EPOLLIN = select.EPOLLIN
EPOLLOUT = select.EPOLLOUT
READABLE = select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP
RX_CAP = 256 * 1024  # one recv_into reads at most this much (a preallocated, shared buffer)
TX_CHUNK = 256 * 1024  # one send writes at most this much (a slice of the pattern)
MAX_CHUNKS = 16  # sends per flush, so one fast connection cannot starve the loop
TICK_NS = 250_000_000  # progress reports and histogram folding at most this often
# After a run, how long to wait for the server's EOF on each connection (see _close_cleanly).
CLOSE_TIMEOUT_NS = 2_000_000_000

# Bound once: the loop reads the clock every turn.
_monotonic_ns = time.monotonic_ns

# progress(measuring, messages since the start): called every TICK_NS or so.
ProgressFn = Callable[[bool, int], None]


@dataclass(frozen=True)
class Plan:
    """What one process does. ``rate`` is this process's share (msgs/s) or None (closed loop);
    ``first_index`` numbers its connections globally so every connection has its own pattern."""

    workload: str
    size: int
    depth: int
    rate: float | None
    warmup: float
    duration: float
    first_index: int = 0
    server_pid: int | None = None  # measure this server's CPU over the window
    http: HttpTarget | None = None  # workload http: the request and what its answer must be
    verify_every: int = 1  # workload http: checksum the body of every k-th response
    engine: str = "python"  # python or native (fastsock.load.native_engine)
    # One send writes at most this much. SOCK_SEQPACKET: the message size, so that every send
    # is one message (a send there is a message, whatever its length).
    tx_chunk: int = TX_CHUNK


class Conn:
    """One connection's state. Stream positions are byte counts since the start."""

    __slots__ = (
        "alive",
        "last_bad",
        "fd",
        "index",
        "next_done",
        "recv_into",
        "rx_pos",
        "seed",
        "send",
        "sock",
        "times",
        "tx_pos",
        "tx_target",
        "writing",
    )

    def __init__(self, sock: socket.socket, index: int, seed: int, size: int) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.index = index
        self.seed = seed
        self.recv_into = sock.recv_into
        self.send = sock.send
        self.rx_pos = 0  # bytes received (echo: verified)
        self.tx_pos = 0  # bytes written to the socket
        self.tx_target = 0  # bytes that should have been written by now
        self.next_done = size  # rx_pos at which the oldest outstanding message is complete
        self.times: deque[int] = deque()  # send (closed) or due (open) times of messages in flight
        self.writing = False  # EPOLLOUT registered: the socket buffer was full
        self.alive = True
        self.last_bad = -1  # number of the last message counted as a mismatch


class Engine:
    """Runs one process's connections (workload echo); :meth:`run` returns the worker result.

    A workload with its own loop subclasses it (``fastsock.load.stream_engine``,
    ``fastsock.load.http_engine``) and overrides what differs: :meth:`_run_workload` and maybe
    ``conn_class``, :meth:`_make_pattern`, :meth:`_send_due`, :meth:`_closed`."""

    conn_class: type[Conn] = Conn

    def __init__(
        self, plan: Plan, sockets: list[socket.socket], progress: ProgressFn | None = None
    ) -> None:
        self.plan = plan
        self.size = plan.size
        self.unit = plan.size  # bytes one message sends (http: one request)
        self.pattern = self._make_pattern()
        self.progress = progress
        self.rxbuf = bytearray(RX_CAP)
        self.rxview = memoryview(self.rxbuf)
        self.recorder = LatencyRecorder()
        self.error_log = ErrorLog()
        self.errors = self.error_log.counts
        self.error_samples = self.error_log.samples
        self.ep = select.epoll()
        self.conns = [
            self.conn_class(
                sock, plan.first_index + i, self.pattern.seed_for(plan.first_index + i), plan.size
            )
            for i, sock in enumerate(sockets)
        ]
        self.by_fd: list[Conn | None] = [None] * (max(c.fd for c in self.conns) + 1)
        for c in self.conns:
            self.by_fd[c.fd] = c
        self.alive = len(self.conns)
        self.completed = 0  # echo: messages answered; send/recv: bytes moved
        self.incomplete = 0
        self.window = Window(plan.server_pid)
        self.completed_at_start = 0
        # Each connection's count (_conn_count) at the window's edges: fairness, read from
        # state the loop keeps anyway, so the hot loop pays nothing for it.
        self.conn_at_start: list[int] | None = None
        self.conn_at_end: list[int] | None = None
        # The loop's clock (see _start_clock and _turn).
        self.t0 = 0
        self.end = 0
        self.next_phase = 0
        self.next_tick = 0
        self.next_edge = 0  # min(next_phase, next_tick): one compare a turn in the common case
        self.measuring = False
        self.due: DueTimes | None = None

    def _make_pattern(self) -> Pattern:
        """What the connections send (``_flush`` writes slices of its ``view``)."""
        return Pattern(self.plan.size)

    # -- errors -------------------------------------------------------------------------------

    def _error(self, kind: str, c: Conn, detail: str) -> None:
        if self.error_log.add(kind, f"conn {c.index}: {kind}: {detail}"):
            log.warning("conn %d: %s: %s", c.index, kind, detail)

    def _drop(self, c: Conn) -> None:
        """Close a failed connection; the others go on."""
        if not c.alive:
            return
        c.alive = False
        self.by_fd[c.fd] = None
        try:
            self.ep.unregister(c.fd)
        except (OSError, ValueError):
            pass
        c.sock.close()
        self.alive -= 1

    def _fail(self, c: Conn, err: OSError) -> None:
        if err.errno in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED):
            self._error("reset", c, str(err))
        else:
            self._error("other", c, str(err))
        self._drop(c)

    def _closed(self, c: Conn) -> None:
        """The server closed the connection: mid-message is a short read, else a close."""
        if self.plan.workload == "echo" and c.rx_pos % self.size:
            self._error("short_read", c, f"server closed after {c.rx_pos % self.size} bytes")
        else:
            self._error("closed", c, "server closed the connection")
        self._drop(c)

    def _mismatch(self, c: Conn, n: int) -> None:
        """Slow path: count the messages with a wrong byte in this chunk, each one once."""
        bad = self.pattern.bad_messages(self.rxview[:n], c.seed, c.rx_pos, self.size)
        new = [number for number in bad if number > c.last_bad]
        if not new:
            return
        c.last_bad = new[-1]
        self.error_log.add(
            "mismatch",
            f"conn {c.index}: mismatch: message(s) {new[0]}..{new[-1]} differ in echoed "
            f"bytes {c.rx_pos}..{c.rx_pos + n}",
            len(new),
        )

    # -- writing ------------------------------------------------------------------------------

    def _want_write(self, c: Conn, want: bool) -> None:
        if want != c.writing and c.alive:
            c.writing = want
            self.ep.modify(c.fd, EPOLLIN | EPOLLOUT if want else EPOLLIN)

    def _flush(self, c: Conn) -> None:
        """Write towards ``tx_target`` until done or the socket buffer is full."""
        view = self.pattern.view
        period = self.pattern.period
        tx = c.tx_pos
        target = c.tx_target
        chunk = self.plan.tx_chunk
        for _ in range(MAX_CHUNKS):
            if tx >= target:
                break
            n = min(target - tx, chunk)
            off = (c.seed + tx) % period
            try:
                sent = c.send(view[off : off + n])
            except BlockingIOError:
                sent = 0
            except OSError as err:
                self._fail(c, err)
                return
            tx += sent
            if sent < n:
                break
        c.tx_pos = tx
        self._want_write(c, tx < target)

    def _start_messages(self, t0: int) -> None:
        """Register every connection; closed loop: put ``depth`` messages in flight on each."""
        depth = self.plan.depth
        for c in self.conns:
            self.ep.register(c.fd, EPOLLIN)
            if self.due is None:
                c.tx_target = depth * self.unit
                c.times.extend([t0] * depth)
                self._flush(c)

    def _send_due(self, c: Conn, due: int) -> None:
        """Open loop: the message due at ``due`` goes out on ``c`` (latency counts from then)."""
        c.tx_target += self.unit
        c.times.append(due)
        if not c.writing:
            self._flush(c)

    # -- phases -------------------------------------------------------------------------------

    def _conn_count(self, c: Conn) -> int:
        """What ``c`` has completed since the start, in the unit of ``completed`` (echo:
        messages answered; ``next_done`` moves one message past each completion)."""
        return c.next_done // self.size - 1

    def _begin_window(self, now: int) -> None:
        self.recorder.reset()
        self.completed_at_start = self.completed
        self.conn_at_start = [self._conn_count(c) for c in self.conns]
        self.window.begin(now)

    def _end_window(self, now: int) -> None:
        self.window.close(now)
        self.conn_at_end = [self._conn_count(c) for c in self.conns]
        if self.plan.rate is not None and self.plan.workload in LATENCY_WORKLOADS:
            self.incomplete += age_unanswered(
                self.recorder.values.append, now, (c.times for c in self.conns if c.alive)
            )

    def _wait(self, timeout_ns: int, precise: bool) -> list[tuple[int, int]]:
        """Events, waiting at most ``timeout_ns``. epoll's timeout has millisecond granularity,
        which would make an open-loop schedule late by up to 1 ms (and the lateness counts as
        latency), so a precise wait sleeps in select() (microseconds) on the epoll fd first."""
        if timeout_ns <= 0:
            return self.ep.poll(0)
        if precise:
            if select.select([self.ep.fileno()], [], [], timeout_ns / 1e9)[0]:
                return self.ep.poll(0)
            return []
        return self.ep.poll(timeout_ns / 1e9)

    def _tick(self, measuring: bool) -> None:
        if len(self.recorder.values) >= FOLD_AT:
            self.recorder.fold()
        if self.progress is not None:
            done = self.completed
            if self.plan.workload not in LATENCY_WORKLOADS:
                done //= self.size
            self.progress(measuring, done)

    def _start_clock(self, t0: int) -> None:
        """Set the loop's clock for a run from ``t0`` (see :meth:`_turn`)."""
        plan = self.plan
        warm_end, self.end = phases(t0, plan.warmup, plan.duration)
        self.next_phase = warm_end
        self.next_tick = t0 + TICK_NS
        self.next_edge = min(self.next_phase, self.next_tick)
        self.measuring = False
        self.due = DueTimes(t0, plan.rate) if plan.rate is not None else None

    def _turn(self, completed: int) -> list[tuple[int, int]] | None:
        """The clock's part of one turn of a workload's loop, the same for all: at an edge
        (window or tick, :meth:`_edge`) act on it, send what the open-loop schedule has due,
        then wait for events until the next of those and return them; None once the window
        has closed. ``completed`` is the loop's count so far (a local in the hot loop).

        Called once a turn, not once a message; the closed loop's common case is one clock
        read, one compare and the wait, as when this was written out in each loop."""
        now = _monotonic_ns()
        if now >= self.next_edge:
            self.completed = completed
            if not self._edge(now):
                return None
        due = self.due
        if due is None:
            return self._wait(self.next_edge - now, False)
        # Send everything due by now; a late client catches up at once, and the latency still
        # counts from the due time.
        conns = self.conns
        end = self.end
        while due.next <= now and due.next < end:
            c = conns[due.count % len(conns)]
            at = due.advance()
            if c.alive:
                self._send_due(c, at)
        return self._wait(min(due.next, self.next_edge) - now, True)

    def _reads(self, events: list[tuple[int, int]]) -> Iterator[tuple[Conn, int]]:
        """The reading part of one batch of events, the same for every stream workload: each
        connection that had bytes, with how many are now at the start of ``rxbuf``. A short
        send's EPOLLOUT is flushed first; a would-block is skipped, and a reset or an EOF is
        handled here (the connection is gone then), so the caller sees only data."""
        by_fd = self.by_fd
        rxbuf = self.rxbuf
        flush = self._flush
        for fd, ev in events:
            c = by_fd[fd]
            if c is None:
                continue  # dropped earlier in this batch
            if ev & EPOLLOUT:
                # Rare: EPOLLOUT is registered only while a send was short.
                flush(c)
                if not (ev & READABLE and c.alive):
                    continue
            try:
                n = c.recv_into(rxbuf)
            except BlockingIOError:
                continue
            except OSError as err:
                self._fail(c, err)
                continue
            if not n:
                self._closed(c)
                continue
            yield c, n

    def _edge(self, now: int) -> bool:
        """Begin or close the window, or tick, whichever is due. False: the window closed."""
        if now >= self.next_phase:
            if self.measuring:
                self._end_window(now)
                return False
            self._begin_window(now)
            self.measuring = True
            self.next_phase = self.end
        if now >= self.next_tick:
            self._tick(self.measuring)
            self.next_tick = now + TICK_NS
        self.next_edge = min(self.next_phase, self.next_tick)
        return True

    def run(self, t0: int) -> dict:
        """Run the plan from ``t0`` (a ``time.monotonic_ns()`` value, maybe in the future)."""
        self.t0 = t0
        delay = t0 - time.monotonic_ns()
        if delay > 0:
            time.sleep(delay / 1e9)
        finished = False
        try:
            self._run_workload(t0)
            finished = True
        finally:
            if finished:
                self._close_cleanly(time.monotonic_ns() + CLOSE_TIMEOUT_NS)
            for c in self.conns:
                if c.alive:
                    c.sock.close()
            self.ep.close()
        return self._result()

    def _close_cleanly(self, deadline: int) -> None:
        """Close every live connection cleanly (:func:`fastsock.load.conn.close_cleanly`).
        Not through _drop: the result's conns_alive counts the connections that lasted the
        run, and these did."""
        live = [c for c in self.conns if c.alive]
        for c in live:
            try:
                self.ep.unregister(c.fd)
            except (OSError, ValueError):
                pass
        close_cleanly([c.sock for c in live], deadline, self.rxbuf)
        for c in live:
            c.alive = False

    def _run_workload(self, t0: int) -> None:
        """The workload's loop, from ``t0`` until the window closes or no connection is left."""
        self._run_echo(t0)

    def _run_echo(self, t0: int) -> None:
        plan = self.plan
        size = plan.size
        self._start_clock(t0)
        open_loop = self.due is not None
        self._start_messages(t0)

        # Locals for the hot loop (attribute lookups cost per message).
        reads = self._reads
        rxview = self.rxview
        startswith = self.pattern.data.startswith
        pview = self.pattern.view
        period = self.pattern.period
        monotonic_ns = time.monotonic_ns
        record = self.recorder.values.append
        flush = self._flush
        tx_chunk = plan.tx_chunk
        turn = self._turn
        completed = 0

        while self.alive:
            events = turn(completed)
            if events is None:
                break
            for c, n in reads(events):
                rx = c.rx_pos
                if not startswith(rxview[:n], (c.seed + rx) % period):
                    self._mismatch(c, n)
                rx += n
                c.rx_pos = rx
                if rx > c.tx_pos:
                    self._error("mismatch", c, "server sent bytes that were never sent")
                    self._drop(c)
                    continue
                done = c.next_done
                if rx < done:
                    continue  # part of a message
                now = monotonic_ns()
                times = c.times
                record(now - times.popleft())
                done += size
                got = 1
                while rx >= done:  # more messages in the same read (depth > 1)
                    record(now - times.popleft())
                    done += size
                    got += 1
                c.next_done = done
                completed += got
                if open_loop:
                    continue
                # Closed loop: each completion sends the next message at once.
                if got == 1:
                    times.append(now)
                else:
                    times.extend([now] * got)
                target = c.tx_target + got * size
                c.tx_target = target
                if c.writing:
                    continue  # EPOLLOUT will flush
                tx = c.tx_pos
                n = target - tx
                if n > tx_chunk:
                    flush(c)
                    continue
                # Inlined _flush for the common case: one send of a pattern slice.
                off = (c.seed + tx) % period
                try:
                    sent = c.send(pview[off : off + n])
                except BlockingIOError:
                    sent = 0
                except OSError as err:
                    self._fail(c, err)
                    continue
                c.tx_pos = tx + sent
                if sent < n:
                    self._want_write(c, True)
        self.completed = completed

    def _result(self) -> dict:
        """Counts for the measured window (or what ran of it if every connection failed)."""
        if self.window.start is None:
            # Every connection failed during warm-up: nothing was measured.
            now = time.monotonic_ns()
            self._begin_window(now)
            self._end_window(now)
        elif self.window.end is None:
            self._end_window(time.monotonic_ns())
        workload = self.plan.workload
        messages, nbytes = messages_and_bytes(
            workload, self.completed - self.completed_at_start, self.size
        )
        return worker_result(
            messages=messages,
            nbytes=nbytes,
            elapsed_ns=self.window.elapsed_ns,
            errors=dict(self.errors),
            error_samples=list(self.error_samples),
            histogram=self.recorder.encoded() if workload in LATENCY_WORKLOADS else None,
            incomplete=self.incomplete,
            conns_alive=self.alive,
            cpu=self.window.cpu,
            server=self.window.server,
            conn_messages=window_counts(
                self.conn_at_start, self.conn_at_end or [], workload, self.size
            ),
        )
