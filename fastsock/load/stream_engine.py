"""The one-way workloads, ``send`` and ``recv``: bytes, not messages, and no latency.

``send`` writes to a discard server as fast as the socket takes it (closed loop) or on the
schedule (open loop); ``recv`` reads from a source server and checks the stream (byte k is
k % 256). ``completed`` counts payload bytes; messages are bytes // size. ``send`` counts bytes
the kernel accepted: at the end up to a socket buffer per connection may still be on its way.
Everything else (connections, sending, the clock, the window, the result) is :class:`Engine`'s.
"""

from __future__ import annotations

from fastsock.load.engine import EPOLLIN, EPOLLOUT, READABLE, RX_CAP, Conn, Engine

# What a source server sends: stream byte k is k % 256 (fastsock serve --mode source).
SOURCE_PATTERN = bytes(range(256)) * (RX_CAP // 256 + 1)
UNLIMITED = 1 << 62  # closed-loop send: a target never reached


class StreamEngine(Engine):
    """:class:`Engine` for ``Plan.workload`` ``send`` or ``recv``."""

    def _conn_count(self, c: Conn) -> int:
        """Bytes this connection moved (its share of ``completed``)."""
        return c.tx_pos if self.plan.workload == "send" else c.rx_pos

    def _send_due(self, c: Conn, due: int) -> None:
        """Open loop: ``size`` more bytes go out; what the kernel took counts at once (there
        is no answer to wait for, and no latency)."""
        before = c.tx_pos
        c.tx_target += self.unit
        if not c.writing:
            self._flush(c)
        self.completed += c.tx_pos - before

    def _run_workload(self, t0: int) -> None:
        sending = self.plan.workload == "send"
        self._start_clock(t0)
        for c in self.conns:
            if sending and self.due is None:
                c.tx_target = UNLIMITED
                c.writing = True
                self.ep.register(c.fd, EPOLLIN | EPOLLOUT)
            else:
                self.ep.register(c.fd, EPOLLIN)
        rxbuf = self.rxbuf
        source_startswith = SOURCE_PATTERN.startswith
        while self.alive:
            events = self._turn(self.completed)
            if events is None:
                break
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
