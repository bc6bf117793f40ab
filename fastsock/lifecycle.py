"""What both engines' servers do the same way: drain on the first signal and close everything on
the second, count a finished connection into the stats, close idle connections, keep a reserve
descriptor for EMFILE. One copy for :class:`fastsock.server.Server` (epoll) and
:class:`fastsock.uring.server.UringServer` (io_uring), so a fix to the policy reaches both.

None of this is on the per-message path. An engine provides the steps that differ in how they
happen, not in what they mean: stopping its loop, closing its listener, scheduling a callback
and reading its loop's clock.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Collection
from typing import Any, Protocol

from fastsock.stats import ServerStats

log = logging.getLogger("fastsock.server")


class _Conn(Protocol):
    bytes_in: int
    bytes_out: int
    echoed: int
    progress_seen: int
    progress_at: float

    @property
    def closed(self) -> bool: ...

    def abort(self) -> None: ...


class ServerLifecycle:
    """The shared policies; a subclass sets ``config``, ``stats``, ``connections`` and
    ``_draining`` and implements the four engine steps below."""

    config: Any  # fastsock.server.ServerConfig (not imported: server.py imports this module)
    stats: ServerStats
    connections: Collection[Any]
    _draining: bool

    # -- the engine's steps -------------------------------------------------------------------
    def _stop(self) -> None:
        """Make :meth:`run` return once the current callback is done."""
        raise NotImplementedError

    def _close_listener(self) -> None:
        """Stop accepting: close the listening socket (and remove its socket file)."""
        raise NotImplementedError

    def _schedule(self, delay: float, callback: Callable[[], None]) -> object:
        raise NotImplementedError

    def _clock(self) -> float:
        """The loop's time of the current iteration (time.monotonic scale)."""
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------
    @staticmethod
    def _open_reserve_fd() -> int | None:
        """A spare descriptor to free when accept() hits EMFILE, so the waiting connection can
        be accepted and closed (its client sees EOF) instead of hanging in the backlog."""
        try:
            return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None

    def _on_signal(self, signum: int) -> None:
        if self._draining:
            log.info("second signal: closing %d connections now", len(self.connections))
            self._close_all()
            return
        self.shutdown()

    def shutdown(self) -> None:
        """Stop accepting, let open connections finish (up to ``drain_timeout``), then stop."""
        if self._draining:
            return
        self._draining = True
        self._close_listener()
        if not self.connections:
            self._stop()
            return
        self._drain_timer = self._schedule(self.config.drain_timeout, self._close_all)

    def _close_all(self) -> None:
        """Abort every connection; the loop stops when the last one is gone (at once for the
        epoll engine, whose abort closes; after its last completion for io_uring)."""
        for conn in list(self.connections):
            conn.abort()
        self._draining = True
        if not self.connections:
            self._stop()

    def _count_closed(self, conn: _Conn) -> None:
        """A connection is gone (already out of ``connections``): add it to the stats, and stop
        if it was the last one of a drain."""
        stats = self.stats
        stats.closed += 1
        stats.bytes_in += conn.bytes_in + conn.echoed
        stats.bytes_out += conn.bytes_out + conn.echoed
        if self._draining and not self.connections:
            self._stop()

    def _sweep_idle(self) -> None:
        """Close connections that moved no byte for ``idle_timeout``.

        Activity is judged by the byte counters, not a clock read per message: a connection
        whose counters changed since the last sweep was active at some moment since then, and
        is taken as active *now* -- never early, at most one sweep interval late.
        """
        now = self._clock()
        deadline = now - self.config.idle_timeout
        idle = []
        for conn in self.connections:
            progress = conn.bytes_in + conn.bytes_out + conn.echoed
            if progress != conn.progress_seen:
                conn.progress_seen = progress
                conn.progress_at = now
            elif conn.progress_at < deadline and not conn.closed:
                idle.append(conn)
        for conn in idle:
            self.stats.idle_closed += 1
            conn.abort()
