"""The http workload's event loop: keep-alive GETs, pipelined or on a schedule, every answer
checked.

Each connection repeats one preformatted request (:class:`RequestPattern`: pipelining ``depth``
requests is sending ``depth`` copies back to back, through the same ``_flush`` as echo). Answers
are read with ``recv_into`` one shared 256 KiB buffer and parsed in place: a head is found with
``bytearray.find`` and may be split over reads (its start is kept until the rest arrives); a body
is never buffered, only fed to ``zlib.crc32`` slice by slice as it arrives (~3 GB/s here). A head
is parsed once: every later answer with the same bytes (they differ only when the Date header
ticks) is a set lookup.

Latency runs from the request's send (closed loop) or due time (open loop, as echo) to the read
that brought the last body byte. Every answer must be ``200`` with the probe's Content-Length and
body CRC-32; a wrong status, length or head is a mismatch and drops the connection (its byte
stream can no longer be trusted), a wrong body is a mismatch and the connection goes on.
"""

from __future__ import annotations

import socket
import time
import zlib

from fastsock.load.engine import TX_CHUNK, Conn, Engine
from fastsock.load.http import HEAD_END, MAX_HEAD, HeadError, describe_status, parse_head
from fastsock.load.pattern import Pattern

MAX_GOOD_HEADS = 64  # distinct good heads remembered (a new one per Date tick)


class RequestPattern(Pattern):
    """The request repeated back to back, so any slice of up to ``TX_CHUNK`` bytes starting in
    the first copy is contiguous: ``_flush`` sends ``view[tx % len(request):...]``."""

    def __init__(self, request: bytes) -> None:  # no super().__init__: no random payload here
        self.period = len(request)
        self.span = TX_CHUNK
        self.data = request * (TX_CHUNK // len(request) + 2)
        self.view = memoryview(self.data)

    def seed_for(self, conn_index: int) -> int:
        return 0  # every connection sends the same bytes


class HttpConn(Conn):
    """A connection's parse state on top of :class:`Conn` (``tx_pos`` counts request bytes,
    ``times`` holds one entry per request whose answer is not complete)."""

    __slots__ = ("body_left", "check", "crc", "head", "responses")

    def __init__(self, sock: socket.socket, index: int, seed: int, size: int) -> None:
        super().__init__(sock, index, seed, size)
        self.body_left = 0  # body bytes of the current answer still to come; 0: a head is next
        self.check = True  # checksum this answer's body (--verify-every)
        self.crc = 0  # CRC-32 of the current body so far
        self.head = b""  # the start of a head that was split over reads
        self.responses = 0  # answers begun


class HttpEngine(Engine):
    """:class:`Engine` for ``Plan.workload == "http"`` (``plan.http`` set, ``plan.size`` the
    body length). ``completed`` counts answers; ``body_bytes`` counts body bytes read."""

    conn_class = HttpConn

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        assert self.plan.http is not None
        self.target = self.plan.http
        self.good_heads: set[bytes] = set()
        self.body_bytes = 0
        self.body_bytes_at_start = 0
        self.period = self.unit = len(self.target.request)  # bytes per request
        self.verify_every = self.plan.verify_every
        self.record = self.recorder.values.append

    def _make_pattern(self) -> Pattern:
        assert self.plan.http is not None
        return RequestPattern(self.plan.http.request)

    def _run_workload(self, t0: int) -> None:
        self._run_http(t0)

    def _conn_count(self, c: Conn) -> int:
        """Answers complete on ``c``: those begun, less one whose body is still arriving."""
        assert isinstance(c, HttpConn)
        return c.responses - (1 if c.body_left else 0)

    def _begin_window(self, now: int) -> None:
        super()._begin_window(now)
        self.body_bytes_at_start = self.body_bytes

    def _result(self) -> dict:
        result = super()._result()
        # Body bytes as read, not answers x size: a window edge may fall inside a big body.
        result["bytes"] = self.body_bytes - self.body_bytes_at_start
        return result

    # -- errors -------------------------------------------------------------------------------

    def _closed(self, c: Conn) -> None:
        assert isinstance(c, HttpConn)
        if c.head:
            self._error(
                "short_read",
                c,
                f"server closed in the head of answer {c.responses + 1} after {len(c.head)} "
                f"bytes of it",
            )
        elif c.body_left:
            self._error(
                "short_read",
                c,
                f"server closed in the body of answer {c.responses} after "
                f"{self.size - c.body_left} bytes of it",
            )
        else:
            self._error("closed", c, "server closed the connection")
        self._drop(c)

    def _bad_head(self, c: HttpConn, head: bytes) -> None:
        """Slow path: a head not seen before. Remember it if it is good, else count the error
        and drop the connection (after a wrong head the stream cannot be followed)."""
        try:
            parsed = parse_head(head)
        except HeadError as err:
            self._error("mismatch", c, f"answer {c.responses + 1}: bad response head: {err}")
            self._drop(c)
            return
        if parsed.status != 200:
            self._error("mismatch", c, f"answer {c.responses + 1}: {describe_status(parsed)}")
        elif parsed.length != self.size:
            self._error(
                "mismatch",
                c,
                f"answer {c.responses + 1}: Content-Length {parsed.length}, not {self.size}",
            )
        elif parsed.close:
            # Keep-alive is what is measured: a server that closes after each answer would
            # make every answer pay for a new connection (and this one ends after its body).
            self._error("closed", c, f"answer {c.responses + 1}: server sent Connection: close")
        else:
            if len(self.good_heads) >= MAX_GOOD_HEADS:
                self.good_heads.clear()
            self.good_heads.add(head)
            return
        self._drop(c)

    # -- reading ------------------------------------------------------------------------------

    def _receive(self, c: HttpConn, n: int, now: int) -> int:
        """Parse ``rxbuf[:n]`` on ``c``: heads, bodies, pipelined answers. Returns the answers
        completed (their latency recorded); ``c`` may have been dropped (check ``c.alive``)."""
        rxbuf = self.rxbuf
        rxview = self.rxview
        size = self.size
        times = c.times
        pos = 0
        got = 0
        while pos < n:
            left = c.body_left
            if left:
                take = n - pos
                if take > left:
                    take = left
                if c.check:
                    c.crc = zlib.crc32(rxview[pos : pos + take], c.crc)
                pos += take
                self.body_bytes += take
                left -= take
                c.body_left = left
                if left:
                    break
                if c.check and c.crc != self.target.crc:
                    self._error(
                        "mismatch",
                        c,
                        f"answer {c.responses}: body CRC-32 {c.crc:08x}, not {self.target.crc:08x}",
                    )
                self.record(now - times.popleft())
                got += 1
                continue
            # A head is next.
            if not c.head:
                end = rxbuf.find(HEAD_END, pos, n)
                if end < 0:
                    c.head = bytes(rxview[pos:n])
                    if len(c.head) > MAX_HEAD:
                        self._long_head(c)
                    break
                head = bytes(rxview[pos:end])
                pos = end + 4
            else:
                # Slow path: the head began in an earlier read (the end may straddle the edge).
                kept = len(c.head)
                joined = c.head + rxview[pos : min(n, pos + MAX_HEAD + 4)]
                end = joined.find(HEAD_END, max(kept - 3, 0))
                if end < 0:
                    c.head = joined
                    if len(joined) > MAX_HEAD:
                        self._long_head(c)
                    break
                head = joined[:end]
                pos += end + 4 - kept
                c.head = b""
            if head not in self.good_heads:
                self._bad_head(c, head)
                if not c.alive:
                    return got
            responses = c.responses + 1
            if responses * self.period > c.tx_pos:
                self._error("mismatch", c, f"answer {responses} to a request never sent")
                self._drop(c)
                return got
            c.responses = responses
            c.check = self.verify_every == 1 or responses % self.verify_every == 1
            if size:
                c.body_left = size
                c.crc = 0
                continue
            self.record(now - times.popleft())  # an empty file: the head is the whole answer
            got += 1
        return got

    def _long_head(self, c: HttpConn) -> None:
        self._error("mismatch", c, f"answer {c.responses + 1}: head over {MAX_HEAD} bytes")
        self._drop(c)

    # -- the loop -----------------------------------------------------------------------------

    def _run_http(self, t0: int) -> None:
        """Like ``_run_echo``: the clock, the open-loop schedule, sending and the closed loop's
        next requests are the same; what differs is reading (``_receive``)."""
        self._start_clock(t0)
        open_loop = self.due is not None
        self._start_messages(t0)
        monotonic_ns = time.monotonic_ns
        receive = self._receive
        flush = self._flush
        period = self.period
        completed = 0

        while self.alive:
            events = self._turn(completed)
            if events is None:
                break
            for c, n in self._reads(events):
                got = receive(c, n, monotonic_ns())
                if not got:
                    continue
                completed += got
                if open_loop or not c.alive:
                    continue
                # Closed loop: as many new requests as answers completed, in one send.
                c.times.extend([monotonic_ns()] * got)
                c.tx_target += got * period
                if not c.writing:
                    flush(c)
        self.completed = completed
