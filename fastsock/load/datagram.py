"""The load engine for ``--type dgram``: datagrams with sequence numbers, over UDP or UNIX.

Each client socket is bound (UNIX: an autobound abstract name, so the server can answer) and
connected to the server, and keeps ``depth`` datagrams in flight (closed loop) or sends on a
fixed schedule (open loop, ``rate``; latency from each datagram's due time, as for streams).

A datagram is a 12-byte header -- its sequence number on this socket (u64) and the socket's
index (u32), little-endian -- followed by pattern bytes that depend on both, so an answer is
checked whole against what was sent: a wrong byte is **corrupted**, a sequence number that was
already answered is **duplicated**, one lower than the highest answered so far is
**reordered** (counted, and still a valid answer), and one unanswered after ``loss_timeout`` is
**lost**: the window moves on (a lost reply never hangs a closed loop), and an answer that comes
after that is counted **late**. Over UDP loss is a result, not an error; over UNIX datagrams
(reliable in the kernel) a lost, duplicated or corrupted datagram is an error.
"""

from __future__ import annotations

import errno
import select
import socket
import time
from collections import OrderedDict

from fastsock.address import Endpoint
from fastsock.load.config import LoadConfig
from fastsock.load.conn import ConnectError, ensure_fd_limit
from fastsock.load.histogram import FOLD_AT, LatencyRecorder
from fastsock.load.limits import HEADER, MIN_SIZE, UDP6_MAX
from fastsock.load.schedule import DueTimes, phases
from fastsock.load.verify import ErrorLog
from fastsock.load.window import Window, age_unanswered, window_counts, worker_result

# What a datagram's payload is made of after the header: a slice of this, offset by seq/index.
_PATTERN_PERIOD = 251  # a prime: no message size lines it up with the sequence numbers
_PATTERN = bytes((i * 37 + 11) % 256 for i in range(_PATTERN_PERIOD)) * (UDP6_MAX // 251 + 2)
DEFAULT_LOSS_TIMEOUT = 0.2  # seconds without an answer before a datagram counts as lost
BATCH = 64  # datagrams read per socket per wake-up at most
# Settled sequence numbers remembered per socket (bounds memory). An answer older than that
# and not in flight counts as a duplicate: after KEEP_ANSWERED more datagrams, "late" is moot.
KEEP_ANSWERED = 4096


def payload(seq: int, index: int, size: int) -> bytes:
    """Datagram number ``seq`` of socket ``index``: header, then pattern bytes for both."""
    start = (seq * 7 + index * 13) % _PATTERN_PERIOD
    return HEADER.pack(seq, index) + _PATTERN[start : start + size - MIN_SIZE]


class _Sock:
    __slots__ = (
        "sock",
        "fd",
        "index",
        "next_seq",
        "inflight",
        "highest",
        "answered",
        "expired",
        "done",
    )

    def __init__(self, sock: socket.socket, index: int) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.index = index
        self.next_seq = 0
        # seq -> send (closed loop) or due (open loop) time, oldest first.
        self.inflight: OrderedDict[int, int] = OrderedDict()
        self.highest = -1  # the highest sequence number answered
        # Answered, and given up on (counted lost): tell a duplicate from a late answer. Only
        # the last KEEP_ANSWERED are kept; anything below ``floor`` was settled long ago.
        self.answered: set[int] = set()
        self.expired: set[int] = set()
        self.done = 0  # answers, since the start (per_connection fairness)


def connect_datagram(endpoint: Endpoint, count: int) -> list[socket.socket]:
    """``count`` connected, non-blocking datagram sockets (UNIX: autobound, so answerable)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(endpoint.family, socket.SOCK_DGRAM)
            socks.append(sock)
            if endpoint.is_unix:
                sock.bind(b"")  # the kernel picks a unique abstract name
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
            sock.connect(endpoint.sockaddr)
            sock.setblocking(False)
    except OSError as err:
        for sock in socks:
            sock.close()
        kind = "no such socket" if err.errno == errno.ENOENT else "refused"
        raise ConnectError(kind, f"cannot reach {endpoint}: {err.strerror}") from None
    return socks


class DatagramEngine:
    """One process's datagram sockets; :meth:`run` returns the worker result dict that
    :func:`fastsock.load.report.build` merges (plus ``datagrams``, the loss accounting)."""

    def __init__(
        self,
        endpoint: Endpoint,
        sockets: list[socket.socket],
        *,
        size: int,
        depth: int,
        rate: float | None,
        warmup: float,
        duration: float,
        server_pid: int | None = None,
        loss_timeout: float = DEFAULT_LOSS_TIMEOUT,
    ) -> None:
        self.reliable = endpoint.is_unix  # UNIX datagrams are never lost by the kernel
        self.size = size
        self.depth = depth
        self.rate = rate
        self.warmup = warmup
        self.duration = duration
        self.loss_timeout_ns = int(loss_timeout * 1e9)
        self.socks = [_Sock(s, i) for i, s in enumerate(sockets)]
        self.by_fd = {s.fd: s for s in self.socks}
        self.recorder = LatencyRecorder()
        self.rxbuf = bytearray(UDP6_MAX + 1 if not endpoint.is_unix else max(size, 1) + 1)
        self.rxview = memoryview(self.rxbuf)
        self.error_log = ErrorLog()
        self.counts = dict.fromkeys(
            ("sent", "answered", "lost", "duplicated", "reordered", "corrupted", "late"), 0
        )
        self.window = Window(server_pid)
        self.ep = select.epoll()
        self.incomplete = 0
        self.done_at_start: list[int] | None = None
        self.done_at_end: list[int] = []

    # -- accounting ---------------------------------------------------------------------------
    def _error(self, kind: str, detail: str) -> None:
        self.error_log.add(kind, f"{kind}: {detail}")

    def _send(self, s: _Sock, stamp: int) -> bool:
        seq = s.next_seq
        try:
            s.sock.send(payload(seq, s.index, self.size))
        except BlockingIOError:
            return False  # the send buffer is full: try again on the next turn
        except OSError as err:
            kind = "refused" if err.errno in (errno.ECONNREFUSED, errno.ENOENT) else "other"
            self._error(kind, f"socket {s.index}: send: {err.strerror}")
            return False
        s.next_seq = seq + 1
        s.inflight[seq] = stamp
        self.counts["sent"] += 1
        return True

    def _receive(self, s: _Sock, now: int) -> int:
        """Read what this socket has; returns how many answers freed a window slot."""
        freed = 0
        view, size, counts = self.rxview, self.size, self.counts
        for _ in range(BATCH):
            try:
                n = s.sock.recv_into(self.rxbuf)
            except BlockingIOError:
                break
            except OSError as err:
                kind = "refused" if err.errno == errno.ECONNREFUSED else "other"
                self._error(kind, f"socket {s.index}: receive: {err.strerror}")
                break
            if n < MIN_SIZE:
                counts["corrupted"] += 1
                self._error("mismatch", f"socket {s.index}: a {n}-byte answer has no header")
                continue
            seq, index = HEADER.unpack_from(view)
            if (
                n != size
                or index != s.index
                or seq >= s.next_seq
                or (view[:n] != payload(seq, s.index, size))
            ):
                counts["corrupted"] += 1
                self._error("mismatch", f"socket {s.index}: answer {seq} is not what was sent")
                continue
            sent_at = s.inflight.pop(seq, None)
            if sent_at is None:
                if seq in s.expired:
                    counts["late"] += 1  # counted lost already; it came after all
                    s.expired.discard(seq)
                    s.answered.add(seq)
                else:  # answered before (or so long ago that it left the record)
                    counts["duplicated"] += 1
                    if self.reliable:
                        self._error("other", f"socket {s.index}: answer {seq} came twice")
                continue
            s.answered.add(seq)
            if seq < s.highest:
                counts["reordered"] += 1
            else:
                s.highest = seq
            counts["answered"] += 1
            s.done += 1
            self.recorder.values.append(now - sent_at)
            freed += 1
        return freed

    def _expire(self, s: _Sock, now: int) -> int:
        """Give up on datagrams unanswered for the loss timeout; returns how many."""
        expired = 0
        deadline = now - self.loss_timeout_ns
        while s.inflight:
            seq, stamp = next(iter(s.inflight.items()))
            if stamp > deadline:
                break
            del s.inflight[seq]
            s.expired.add(seq)
            expired += 1
        if len(s.answered) + len(s.expired) > 2 * KEEP_ANSWERED:
            floor = s.next_seq - KEEP_ANSWERED
            s.answered = {seq for seq in s.answered if seq >= floor}
            s.expired = {seq for seq in s.expired if seq >= floor}
        if expired:
            self.counts["lost"] += expired
            if self.reliable:
                self._error("other", f"socket {s.index}: {expired} datagram(s) never answered")
        return expired

    # -- running ------------------------------------------------------------------------------
    def run(self, t0: int) -> dict:
        """Warm up, measure, return the worker result; closes the sockets."""
        try:
            self._run(t0)
        finally:
            for s in self.socks:
                s.sock.close()
            self.ep.close()
        return self._result()

    def _run(self, t0: int) -> None:
        warm_end, end = phases(t0, self.warmup, self.duration)
        for s in self.socks:
            self.ep.register(s.fd, select.EPOLLIN)
        due = DueTimes(t0, self.rate) if self.rate is not None else None
        open_loop = due is not None
        now = time.monotonic_ns()
        if not open_loop:
            for s in self.socks:
                for _ in range(self.depth):
                    self._send(s, now)
        measuring = False
        next_expire = now + self.loss_timeout_ns // 4
        while now < end:
            if not measuring and now >= warm_end:
                self._begin_window(now)
                measuring = True
            if due is not None:
                # Every datagram due by now goes out, stamped with its due time; one the send
                # buffer has no room for stays due (the schedule waits for it).
                while due.next <= now:
                    s = self.socks[due.count % len(self.socks)]
                    if not self._send(s, due.next):
                        break
                    due.advance()
                wait_ns = min(due.next, end) - now
            else:
                wait_ns = min(end, next_expire) - now
            timeout = max(0.0, min(wait_ns, self.loss_timeout_ns // 4) / 1e9)
            events = self.ep.poll(timeout)
            now = time.monotonic_ns()
            for fd, _ in events:
                s = self.by_fd[fd]
                freed = self._receive(s, now)
                if not open_loop:
                    for _ in range(freed):
                        self._send(s, now)
            if now >= next_expire:
                for s in self.socks:
                    expired = self._expire(s, now)
                    if not open_loop:
                        for _ in range(expired):
                            self._send(s, now)
                next_expire = now + self.loss_timeout_ns // 4
            if len(self.recorder.values) >= FOLD_AT:
                self.recorder.fold()
        if not measuring:
            self._begin_window(now)
        self._end_window(now)

    def _begin_window(self, now: int) -> None:
        self.recorder.reset()
        self.counts = dict.fromkeys(self.counts, 0)
        self.error_log.clear()
        # What was sent during the warm-up and is answered now counts as answered, not sent:
        # start the window with those in flight as already sent.
        self.counts["sent"] = sum(len(s.inflight) for s in self.socks)
        self.done_at_start = [s.done for s in self.socks]
        self.window.begin(now)

    def _end_window(self, now: int) -> None:
        self.window.close(now)
        self.done_at_end = [s.done for s in self.socks]
        if self.rate is not None:
            self.incomplete += age_unanswered(
                self.recorder.values.append, now, (s.inflight.values() for s in self.socks)
            )

    def _result(self) -> dict:
        answered = self.counts["answered"]
        result = worker_result(
            messages=answered,
            nbytes=answered * self.size,
            elapsed_ns=self.window.elapsed_ns,
            errors=dict(self.error_log.counts),
            error_samples=list(self.error_log.samples),
            histogram=self.recorder.encoded(),
            incomplete=self.incomplete,
            conns_alive=len(self.socks),
            cpu=self.window.cpu,
            server=self.window.server,
            conn_messages=window_counts(self.done_at_start, self.done_at_end, "echo", self.size),
        )
        result["datagrams"] = dict(self.counts)
        return result


def run_datagram(config: LoadConfig) -> dict:
    """One process's datagram run for :func:`fastsock.load.run_load`."""
    ensure_fd_limit(config.conns + 64)
    sockets = connect_datagram(config.endpoint, config.conns)
    engine = DatagramEngine(
        config.endpoint,
        sockets,
        size=config.size,
        depth=config.depth,
        rate=config.rate,
        warmup=config.warmup,
        duration=config.duration,
        server_pid=config.server_pid,
    )
    return engine.run(time.monotonic_ns())
