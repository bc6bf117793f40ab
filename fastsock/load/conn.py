"""Open many client connections at once, without blocking on any one of them."""

from __future__ import annotations

import errno
import os
import resource
import select
import socket
import time

from fastsock.address import Endpoint

# Connects in flight at once: more would overflow a TCP listener's SYN/accept backlog and
# cost a 1 s SYN retransmit instead of a short wait.
MAX_INFLIGHT = 256


class ConnectError(Exception):
    """Connecting failed; ``kind`` is ``refused``, ``no_socket``, ``timeout`` or ``other``.
    ``str()`` is a one-line message for the user."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _classify(endpoint: Endpoint, err: int) -> ConnectError:
    if err == errno.ECONNREFUSED:
        return ConnectError("refused", f"cannot connect to {endpoint}: connection refused")
    if err == errno.ENOENT:
        return ConnectError("no_socket", f"cannot connect to {endpoint}: no such socket file")
    return ConnectError("other", f"cannot connect to {endpoint}: {os.strerror(err).lower()}")


def ensure_fd_limit(needed: int) -> None:
    """Raise the soft RLIMIT_NOFILE towards the hard limit when ``needed`` fds would not fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if needed <= soft:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        target = soft
    if target < needed:
        raise ConnectError(
            "other", f"{needed} file descriptors needed but the limit is {target} (ulimit -n)"
        )


def connect_many(
    endpoint: Endpoint, count: int, timeout: float, sock_type: int = socket.SOCK_STREAM
) -> list[socket.socket]:
    """``count`` connected non-blocking sockets (TCP_NODELAY on TCP), or :class:`ConnectError`.

    TCP connects return EINPROGRESS and finish when the socket turns writable; a UNIX connect
    either succeeds at once or, with the listener's backlog full, fails with EAGAIN and is
    retried after a short pause (the server is accepting meanwhile).
    """
    ready: list[socket.socket] = []
    pending: dict[int, socket.socket] = {}
    deadline = time.monotonic() + timeout
    addr = endpoint.sockaddr
    ep = select.epoll()
    try:
        while len(ready) < count:
            backlog_full = False
            while len(ready) + len(pending) < count and len(pending) < MAX_INFLIGHT:
                sock = socket.socket(endpoint.family, sock_type)
                if sock_type == socket.SOCK_SEQPACKET:
                    # A message must fit the send buffer whole (EMSGSIZE otherwise).
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
                sock.setblocking(False)
                err = sock.connect_ex(addr)
                if err == 0:
                    ready.append(sock)
                elif err == errno.EINPROGRESS:
                    pending[sock.fileno()] = sock
                    ep.register(sock.fileno(), select.EPOLLOUT)
                else:
                    sock.close()
                    if err != errno.EAGAIN:
                        raise _classify(endpoint, err)
                    backlog_full = True
                    break
            if time.monotonic() > deadline:
                raise ConnectError(
                    "timeout",
                    f"cannot connect to {endpoint}: only {len(ready)} of {count} connections "
                    f"within {timeout:g} s",
                )
            if pending:
                for fd, _ in ep.poll(0.05):
                    sock = pending.pop(fd)
                    ep.unregister(fd)
                    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        sock.close()
                        raise _classify(endpoint, err)
                    ready.append(sock)
            elif backlog_full:
                time.sleep(0.001)
    except BaseException:
        for sock in [*ready, *pending.values()]:
            sock.close()
        raise
    finally:
        ep.close()
    if not endpoint.is_unix:
        for sock in ready:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return ready


def close_cleanly(socks: list[socket.socket], deadline_ns: int, rxbuf: bytearray) -> None:
    """End connections the way a well-behaved client does: shut our write side, read (and
    discard) what the server still sends until its EOF or ``deadline_ns``, then close each.

    Closing a socket with unread bytes in its receive buffer makes the kernel send a RST, and
    the server counts a reset: after a normal run the echoes in flight would do exactly that.
    Both engines call this when a run finished normally; counts were taken when the window
    closed, so nothing read here is measured.
    """
    ep = select.epoll()
    open_socks: dict[int, socket.socket] = {}
    try:
        for sock in socks:
            if sock.fileno() < 0:
                continue
            try:
                sock.shutdown(socket.SHUT_WR)
                ep.register(sock.fileno(), select.EPOLLIN)
            except OSError:
                sock.close()  # already reset: close() is all that is left
                continue
            open_socks[sock.fileno()] = sock
        while open_socks:
            left = deadline_ns - time.monotonic_ns()
            if left <= 0:
                break
            for fd, _ in ep.poll(left / 1e9):
                sock = open_socks.get(fd)
                if sock is None:
                    continue
                try:
                    if sock.recv_into(rxbuf):
                        continue
                except BlockingIOError:
                    continue
                except OSError:
                    pass
                del open_socks[fd]
                ep.unregister(fd)
                sock.close()
    finally:
        ep.close()
        for sock in open_socks.values():
            sock.close()
