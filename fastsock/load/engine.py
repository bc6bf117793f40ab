"""The client event loop of one load process: drive connections, verify, count, time.

One process runs one :class:`Engine` over its share of the connections. The run has three
phases on the shared CLOCK_MONOTONIC (so forked workers line up): start at ``t0``, warm-up
until ``t0 + warmup`` (everything measured so far is thrown away), then the measured window of
``duration`` seconds.

Closed loop: every connection keeps ``depth`` messages in flight; each completion sends the next
message at once. Open loop: message ``k`` of this process is due at ``t0 + k / rate`` on
connection ``k mod conns`` (a fixed schedule, evenly spread); its latency counts from that due
time, not from when the client got round to sending it, so a stalled server shows its stall in
full (coordinated-omission correction, as wrk2 does). Messages still unanswered when the window
closes are recorded with their age at that moment (a lower bound of their latency) and counted
as ``incomplete``, so a stall at the very end is not lost either.

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
from collections.abc import Callable
from dataclasses import dataclass

from fastsock.load.conn import close_cleanly
from fastsock.load.cpu import CpuTimes, ServerCpu, self_times
from fastsock.load.histogram import FOLD_AT, LatencyRecorder
from fastsock.load.http import HttpTarget
from fastsock.load.pattern import Pattern

log = logging.getLogger(__name__)

EPOLLIN = select.EPOLLIN
EPOLLOUT = select.EPOLLOUT
READABLE = select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP
RX_CAP = 256 * 1024  # one recv_into reads at most this much (a preallocated, shared buffer)
TX_CHUNK = 256 * 1024  # one send writes at most this much (a slice of the pattern)
MAX_CHUNKS = 16  # sends per flush, so one fast connection cannot starve the loop
TICK_NS = 250_000_000  # progress reports and histogram folding at most this often
# What a source server sends: stream byte k is k % 256 (fastsock serve --mode source).
SOURCE_PATTERN = bytes(range(256)) * (RX_CAP // 256 + 1)
ERROR_KINDS = ("mismatch", "short_read", "reset", "refused", "closed", "other")
# Workloads made of messages with a latency each (``completed`` counts messages); the others
# stream bytes (``completed`` counts bytes) and record no latency.
LATENCY_WORKLOADS = ("echo", "http")
MAX_ERROR_SAMPLES = 10
# After a run, how long to wait for the server's EOF on each connection (see _close_cleanly).
CLOSE_TIMEOUT_NS = 2_000_000_000

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
    """Runs one process's connections; :meth:`run` returns the worker result dict.

    A workload with its own loop subclasses it (``fastsock.load.http_engine``) and overrides
    ``conn_class``, :meth:`_make_pattern`, :meth:`_run_workload` and :meth:`_closed`."""

    conn_class: type[Conn] = Conn

    def __init__(
        self, plan: Plan, sockets: list[socket.socket], progress: ProgressFn | None = None
    ) -> None:
        self.plan = plan
        self.size = plan.size
        self.pattern = self._make_pattern()
        self.progress = progress
        self.rxbuf = bytearray(RX_CAP)
        self.rxview = memoryview(self.rxbuf)
        self.recorder = LatencyRecorder()
        self.errors = dict.fromkeys(ERROR_KINDS, 0)
        self.error_samples: list[str] = []
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
        self.server_cpu = ServerCpu(plan.server_pid) if plan.server_pid else None
        self.t0 = 0
        self.window_start: int | None = None
        self.window_end: int | None = None
        self.completed_at_start = 0

    def _make_pattern(self) -> Pattern:
        """What the connections send (``_flush`` writes slices of its ``view``)."""
        return Pattern(self.plan.size)

    # -- errors -------------------------------------------------------------------------------

    def _error(self, kind: str, c: Conn, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(f"conn {c.index}: {kind}: {detail}")
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
        self.errors["mismatch"] += len(new)
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(
                f"conn {c.index}: mismatch: message(s) {new[0]}..{new[-1]} differ in echoed "
                f"bytes {c.rx_pos}..{c.rx_pos + n}"
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

    # -- phases -------------------------------------------------------------------------------

    def _begin_window(self, now: int) -> None:
        self.recorder.reset()
        self.window_start = now
        self.completed_at_start = self.completed
        self.cpu_at_start = self_times()
        self.server_at_start = self.server_cpu.times() if self.server_cpu else None

    def _end_window(self, now: int) -> None:
        self.window_end = now
        self.cpu_at_end = self_times()
        self.server_at_end = self.server_cpu.times() if self.server_cpu else None
        if self.plan.rate is not None and self.plan.workload in LATENCY_WORKLOADS:
            append = self.recorder.values.append
            for c in self.conns:
                if c.alive:
                    for due in c.times:
                        append(now - due)
                    self.incomplete += len(c.times)

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
        workload = self.plan.workload
        if workload == "echo":
            self._run_echo(t0)
        else:
            self._run_stream(t0, sending=workload == "send")

    def _phases(self, t0: int) -> tuple[int, int]:
        warm_end = t0 + int(self.plan.warmup * 1e9)
        return warm_end, warm_end + int(self.plan.duration * 1e9)

    def _run_echo(self, t0: int) -> None:
        plan = self.plan
        size = plan.size
        open_loop = plan.rate is not None
        warm_end, end = self._phases(t0)
        for c in self.conns:
            self.ep.register(c.fd, EPOLLIN)
            if not open_loop:
                c.tx_target = plan.depth * size
                c.times.extend([t0] * plan.depth)
                self._flush(c)

        # Locals for the hot loop (attribute lookups cost per message).
        by_fd = self.by_fd
        rxbuf = self.rxbuf
        rxview = self.rxview
        startswith = self.pattern.data.startswith
        pview = self.pattern.view
        period = self.pattern.period
        monotonic_ns = time.monotonic_ns
        record = self.recorder.values.append
        flush = self._flush
        tx_chunk = plan.tx_chunk
        conns = self.conns
        nconns = len(conns)
        interval = 1e9 / plan.rate if open_loop else 0.0
        k = 0  # open loop: next message number; it is due at t0 + k * interval
        next_due = t0 if open_loop else end
        measuring = False
        next_phase = warm_end
        next_tick = t0 + TICK_NS
        completed = 0

        while self.alive:
            now = monotonic_ns()
            if now >= next_phase:
                self.completed = completed
                if measuring:
                    self._end_window(now)
                    break
                self._begin_window(now)
                measuring = True
                next_phase = end
            if now >= next_tick:
                self.completed = completed
                self._tick(measuring)
                next_tick = now + TICK_NS
            if open_loop:
                # Send everything due by now; a late client catches up at once, and the latency
                # still counts from the due time.
                while next_due <= now and next_due < end:
                    c = conns[k % nconns]
                    k += 1
                    if c.alive:
                        c.tx_target += size
                        c.times.append(next_due)
                        if not c.writing:
                            flush(c)
                    next_due = t0 + int(k * interval)
                events = self._wait(min(next_due, next_phase, next_tick) - now, True)
            else:
                events = self._wait(min(next_phase, next_tick) - now, False)

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

    def _run_stream(self, t0: int, sending: bool) -> None:
        """One-way throughput: ``send`` writes to a discard server as fast as the socket takes
        it (closed loop) or on the schedule (open loop); ``recv`` reads from a source server and
        checks the stream (byte k is k % 256). ``completed`` counts payload bytes; messages are
        bytes // size. ``send`` counts bytes the kernel accepted: at the end up to a socket
        buffer per connection may still be on its way."""
        plan = self.plan
        size = plan.size
        open_loop = plan.rate is not None
        warm_end, end = self._phases(t0)
        unlimited = 1 << 62
        for c in self.conns:
            if sending and not open_loop:
                c.tx_target = unlimited
                c.writing = True
                self.ep.register(c.fd, EPOLLIN | EPOLLOUT)
            else:
                self.ep.register(c.fd, EPOLLIN)
        rxbuf = self.rxbuf
        source_startswith = SOURCE_PATTERN.startswith
        conns = self.conns
        nconns = len(conns)
        interval = 1e9 / plan.rate if open_loop else 0.0
        k = 0
        next_due = t0 if open_loop else end
        measuring = False
        next_phase = warm_end
        next_tick = t0 + TICK_NS
        while self.alive:
            now = time.monotonic_ns()
            if now >= next_phase:
                if measuring:
                    self._end_window(now)
                    break
                self._begin_window(now)
                measuring = True
                next_phase = end
            if now >= next_tick:
                self._tick(measuring)
                next_tick = now + TICK_NS
            if open_loop:
                while next_due <= now and next_due < end:
                    c = conns[k % nconns]
                    k += 1
                    if c.alive:
                        before = c.tx_pos
                        c.tx_target += size
                        if not c.writing:
                            self._flush(c)
                        self.completed += c.tx_pos - before
                    next_due = t0 + int(k * interval)
                events = self._wait(min(next_due, next_phase, next_tick) - now, True)
            else:
                events = self._wait(min(next_phase, next_tick) - now, False)
            for fd, ev in events:
                c = self.by_fd[fd]
                if c is None:
                    continue
                if ev & READABLE:
                    try:
                        n = c.recv_into(rxbuf)
                    except BlockingIOError:
                        n = -1
                    except OSError as err:
                        self._fail(c, err)
                        continue
                    if n == 0:
                        self._closed(c)
                        continue
                    if n > 0:
                        if sending:
                            self._error("other", c, "a discard server sent data")
                            self._drop(c)
                            continue
                        if not source_startswith(self.rxview[:n], c.rx_pos & 255):
                            self._error("mismatch", c, f"source bytes {c.rx_pos}+{n} are wrong")
                        c.rx_pos += n
                        self.completed += n
                if ev & EPOLLOUT and c.alive:
                    before = c.tx_pos
                    self._flush(c)
                    self.completed += c.tx_pos - before

    def _result(self) -> dict:
        """Counts for the measured window (or what ran of it if every connection failed)."""
        if self.window_start is None:
            # Every connection failed during warm-up: nothing was measured.
            now = time.monotonic_ns()
            self._begin_window(now)
            self._end_window(now)
        elif self.window_end is None:
            self._end_window(time.monotonic_ns())
        moved = self.completed - self.completed_at_start
        if self.plan.workload in LATENCY_WORKLOADS:
            messages, nbytes = moved, moved * self.size
        else:
            messages, nbytes = moved // self.size, moved
        cpu = self.cpu_at_end - self.cpu_at_start
        server: CpuTimes | None = None
        if self.server_at_start is not None and self.server_at_end is not None:
            server = self.server_at_end - self.server_at_start
        return {
            "messages": messages,
            "bytes": nbytes,
            "elapsed_ns": self.window_end - self.window_start,
            "errors": dict(self.errors),
            "error_samples": list(self.error_samples),
            "histogram": (
                self.recorder.encoded() if self.plan.workload in LATENCY_WORKLOADS else None
            ),
            "incomplete": self.incomplete,
            "conns_alive": self.alive,
            "cpu_user_s": cpu.user,
            "cpu_sys_s": cpu.sys,
            "server_user_s": server.user if server else None,
            "server_sys_s": server.sys if server else None,
        }
