"""The server: listeners, accepting in batches, connection limits, idle timeouts, drain, stats."""

from __future__ import annotations

import errno
import logging
import os
import socket
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from signal import SIG_IGN, SIGINT, SIGTERM
from typing import TextIO

from fastsock.address import (
    Endpoint,
    bound_endpoint,
    listen,
    remove_unix_file,
    unix_file_identity,
)
from fastsock.buffer import page_aligned_buffer
from fastsock.connection import Connection, ConnectionContext
from fastsock.datagram import DatagramEndpoint
from fastsock.handlers import MODES, Handler
from fastsock.handlers.source import MessageSourceHandler
from fastsock.http.config import HttpConfig
from fastsock.lifecycle import ServerLifecycle
from fastsock.loop import EVENT_READ, EventLoop, Timer
from fastsock.stats import ServerStats

log = logging.getLogger(__name__)

# Accept at most this many connections per readiness event, so a connection storm cannot starve
# the connections we already have (nginx's multi_accept, libuv's accept loop do the same).
ACCEPT_BATCH = 64
# After an accept failure we cannot fix (EMFILE with no reserve fd), stop accepting this long
# rather than spinning on a listener that stays readable.
ACCEPT_PAUSE_S = 0.1
# struct ucred (pid, uid, gid) as SO_PEERCRED returns it.
_UCRED = struct.Struct("3i")


@dataclass
class ServerConfig:
    endpoint: Endpoint
    mode: str = "echo"
    max_conns: int = 10_000
    idle_timeout: float = 0.0  # seconds; 0 = never
    drain_timeout: float = 5.0
    read_size: int = 256 * 1024
    high_water: int = 1024 * 1024
    low_water: int = 256 * 1024
    backlog: int = 1024
    unix_mode: int | None = None
    # A callable returning a Handler; overrides ``mode`` (tests use it).
    handler_factory: Callable[[], Handler] | None = None
    # File bodies: os.sendfile (True) or the read+send fallback (False, --no-sendfile).
    sendfile: bool = True
    # SO_SNDBUF of accepted sockets (0: the kernel's default). Larger buffers mean fewer
    # wake-ups per byte of a large body (nginx: ``listen ... sndbuf=``).
    sndbuf: int = 0
    # Settings of ``--mode http`` (root, limits, timeouts); required for that mode.
    http: HttpConfig | None = None
    # --type: SOCK_STREAM, SOCK_SEQPACKET (UNIX; connections, messages kept whole) or
    # SOCK_DGRAM (UDP or UNIX; no connections: see fastsock/datagram.py).
    sock_type: int = socket.SOCK_STREAM
    # UNIX listeners only: let in a peer whose uid (SO_PEERCRED) is in allow_uids or whose gid
    # is in allow_gids; both empty lets everyone in. Others are closed at accept.
    allow_uids: frozenset[int] = frozenset()
    allow_gids: frozenset[int] = frozenset()
    # --engine uring: the shared receive pool (fastsock.uring.pool.parse_pool: a total like
    # 16M cut into read_size buffers, or COUNTxSIZE).
    uring_pool: str = "16M"
    # --engine uring: large mode (see fastsock.uring.connection.LARGE_MIN) on. Off only for the
    # benchmark that measures what it buys (the hidden --uring-no-large of ``fastsock serve``).
    uring_large: bool = True


@dataclass
class _Listener:
    sock: socket.socket
    endpoint: Endpoint
    unix_identity: tuple[int, int] | None = None
    paused_until: Timer | None = field(default=None, repr=False)


class Server(ServerLifecycle):
    """A single-threaded server over one :class:`EventLoop`.

    ``Server(config)`` binds at once (so start-up errors surface before anything runs);
    :meth:`run` serves until :meth:`shutdown` (or SIGTERM/SIGINT when ``install_signals``).
    """

    def __init__(
        self,
        config: ServerConfig,
        sock: socket.socket | None = None,
        *,
        owns_unix_file: bool = True,
    ) -> None:
        if config.handler_factory is None and config.mode not in MODES:
            raise ValueError(f"unknown mode {config.mode!r}")
        self.config = config
        self.loop = EventLoop()
        self.stats = ServerStats()
        self.connections: set[Connection] = set()
        self._handler_factory = config.handler_factory or self._mode_factory(config)
        # What every connection shares and needs from us, handed over once (connection.py
        # does not know this module: the dependency runs one way).
        self.context = ConnectionContext(
            loop=self.loop,
            # Page-aligned: at the page offset a bytearray of this size gets, the kernel's copy
            # into it ran ~1.4x slower (fastsock/buffer.py).
            read_buffer=page_aligned_buffer(config.read_size),
            high_water=config.high_water,
            low_water=config.low_water,
            sendfile=config.sendfile,
            stats=self.stats,
            on_closed=self.connection_closed,
        )
        self._draining = False
        self._drain_timer: Timer | None = None
        self._reserve_fd: int | None = self._open_reserve_fd()
        if sock is None:
            sock = listen(config.endpoint, config.backlog, config.unix_mode, config.sock_type)
        self.endpoint = bound_endpoint(sock, config.endpoint)
        identity = None
        # Workers share a listener their parent made: only the parent removes the socket file.
        if owns_unix_file and self.endpoint.is_unix and not self.endpoint.is_abstract:
            identity = unix_file_identity(self.endpoint.path)
        self._listener = _Listener(sock, self.endpoint, identity)
        self._restricted = bool(config.allow_uids or config.allow_gids)
        if self._restricted and not self.endpoint.is_unix:
            raise ValueError("--allow-uid/--allow-gid need a UNIX listener")
        # Peer credentials cost a getsockopt per accept: read them only when they are checked
        # or logged (-v), never on the per-message path.
        self._check_peers = self.endpoint.is_unix and (
            self._restricted or log.isEnabledFor(logging.INFO)
        )
        if config.sock_type == socket.SOCK_DGRAM:
            # No connections to accept: the bound socket itself is served.
            datagrams = DatagramEndpoint(
                sock, config.mode, self.context.read_buffer, self.stats, self.loop
            )
            self.loop.register(sock, EVENT_READ, datagrams.on_readable)
        else:
            self.loop.register(sock, EVENT_READ, self._on_acceptable)
        if config.idle_timeout > 0:
            # A connection is closed between idle_timeout and idle_timeout + 2 intervals after
            # its last byte (see _sweep_idle): 1/8 keeps that within 1.25x the timeout.
            self.loop.call_every(max(0.02, min(1.0, config.idle_timeout / 8)), self._sweep_idle)

    @staticmethod
    def _mode_factory(config: ServerConfig) -> Callable[[], Handler]:
        if config.mode == "http":
            if config.http is None:
                raise ValueError("mode 'http' needs ServerConfig.http")
            from fastsock.handlers.http import http_handler_factory

            return http_handler_factory(config.http)
        if config.mode == "source" and config.sock_type == socket.SOCK_SEQPACKET:
            return MessageSourceHandler
        return MODES[config.mode]

    # -- accepting ----------------------------------------------------------------------------
    def _on_acceptable(self, mask: int) -> None:
        lsock = self._listener.sock
        is_tcp = not self.endpoint.is_unix
        sndbuf = self.config.sndbuf
        if not sndbuf and self.config.sock_type == socket.SOCK_SEQPACKET:
            # An echoed message must fit the send buffer whole (EMSGSIZE otherwise); the kernel
            # caps this at net.core.wmem_max.
            sndbuf = 4 << 20
        for _ in range(ACCEPT_BATCH):
            try:
                sock, addr = lsock.accept()
            except BlockingIOError:
                return
            except OSError as err:
                self._accept_failed(err)
                return
            self.stats.accepted += 1
            peer = "unix"
            if self._check_peers:
                peer = self._admit_peer(sock)
                if not peer:
                    continue
            if len(self.connections) >= self.config.max_conns or self._draining:
                # Accept and close at once: a connection left in the backlog would hang its client.
                self.stats.rejected += 1
                sock.close()
                continue
            sock.setblocking(False)
            if is_tcp:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if sndbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
            if is_tcp:
                peer = f"{addr[0]}:{addr[1]}"
            conn = Connection(self.context, sock, self._handler_factory(), peer)
            self.connections.add(conn)
            if len(self.connections) > self.stats.peak_conns:
                self.stats.peak_conns = len(self.connections)
            conn.start()

    def _admit_peer(self, sock: socket.socket) -> str:
        """Check a UNIX peer's credentials; '' (and the socket closed) when it is not let in,
        else a name for logs. The kernel recorded them at connect(), so they cannot be forged
        by what the peer sends."""
        pid, uid, gid = _UCRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
        )
        config = self.config
        allowed = not self._restricted or uid in config.allow_uids or gid in config.allow_gids
        log.info(
            "peer pid=%d uid=%d gid=%d: %s", pid, uid, gid, "accepted" if allowed else "rejected"
        )
        if not allowed:
            self.stats.rejected_peer += 1
            sock.close()
            return ""
        return f"unix pid={pid} uid={uid}"

    def _accept_failed(self, err: OSError) -> None:
        self.stats.accept_errors += 1
        if err.errno in (errno.EMFILE, errno.ENFILE) and self._reserve_fd is not None:
            # Out of descriptors: free the reserve, accept the waiting connection and close it
            # at once (its client gets a clean EOF instead of hanging), then take the reserve
            # back. Without this the listener stays readable and the loop spins.
            os.close(self._reserve_fd)
            self._reserve_fd = None
            try:
                sock, _ = self._listener.sock.accept()
                sock.close()
                self.stats.rejected += 1
            except OSError:
                pass
            self._reserve_fd = self._open_reserve_fd()
            log.warning("out of file descriptors (%s); shed a connection", err)
            return
        if err.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EINTR):
            return  # the client gave up before we accepted; nothing to do
        log.warning("accept failed: %s; pausing accepts for %.1fs", err, ACCEPT_PAUSE_S)
        self._pause_accepting()

    def _pause_accepting(self) -> None:
        listener = self._listener
        if listener.paused_until is not None:
            return
        self.loop.unregister(listener.sock)

        def resume() -> None:
            listener.paused_until = None
            if not self._draining:
                self.loop.register(listener.sock, EVENT_READ, self._on_acceptable)

        listener.paused_until = self.loop.call_later(ACCEPT_PAUSE_S, resume)

    # -- connections --------------------------------------------------------------------------
    def connection_closed(self, conn: Connection) -> None:
        self.connections.discard(conn)
        self._count_closed(conn)

    # -- the engine's steps of ServerLifecycle -------------------------------------------------
    def _stop(self) -> None:
        self.loop.stop()

    def _schedule(self, delay: float, callback: Callable[[], None]) -> Timer:
        return self.loop.call_later(delay, callback)

    def _clock(self) -> float:
        return self.loop.now

    # -- running and stopping -----------------------------------------------------------------
    def install_signal_handlers(
        self, signals: tuple[int, ...] = (SIGTERM, SIGINT), *, ignore_after: bool = False
    ) -> None:
        """Drain on the first of ``signals``, close everything on the second.

        ``ignore_after``: leave the signals ignored once :meth:`run` returns (for a process
        that exits then): a signal arriving after the drain must not turn exit 0 into death by
        the default action.
        """
        after = SIG_IGN if ignore_after else None
        for signum in signals:
            self.loop.add_signal_handler(signum, self._on_signal, after)

    def shutdown_threadsafe(self) -> None:
        """For tests that run the server in a thread."""
        self.loop.call_later(0, self.shutdown)
        self.loop.wake()

    def _close_listener(self) -> None:
        listener = self._listener
        if listener.paused_until is not None:
            listener.paused_until.cancel()
        self.loop.unregister(listener.sock)
        listener.sock.close()
        if listener.unix_identity is not None:
            remove_unix_file(listener.endpoint.path, listener.unix_identity)
            listener.unix_identity = None

    def run(self) -> None:
        try:
            self.loop.run()
        finally:
            self._close_all_quietly()

    def _close_all_quietly(self) -> None:
        for conn in list(self.connections):
            conn.abort()
        close_mode = getattr(self._handler_factory, "close", None)
        if close_mode is not None:
            close_mode()  # e.g. the http mode's cached open files
        if not self._listener.sock._closed:  # type: ignore[attr-defined]
            self._close_listener()
        if self._reserve_fd is not None:
            os.close(self._reserve_fd)
            self._reserve_fd = None
        self.loop.close()

    def print_stats(self, stream: TextIO = sys.stderr) -> None:
        print(self.stats.line(), file=stream, flush=True)
