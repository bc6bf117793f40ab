"""systemd socket activation: take the listening socket systemd opened for us.

The protocol (sd_listen_fds(3)): systemd binds and listens itself, then execs the service with
the sockets as fds 3, 4, ... and sets ``LISTEN_FDS`` (how many) and ``LISTEN_PID`` (the pid they
are meant for: a child that inherits the environment must not take them too). The server never
binds, so it can run without the rights to create the socket file or the port, and systemd
holds the socket across restarts: connections wait in the backlog instead of being refused.

fastsock serves one listener, so exactly one socket is accepted.
"""

from __future__ import annotations

import fcntl
import os
import socket

from fastsock.address import Endpoint, EndpointError, tcp_endpoint, unix_endpoint

SD_LISTEN_FDS_START = 3
_ENV = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


def activated() -> bool:
    """True when systemd passed sockets to *this* process (``LISTEN_PID`` is our pid)."""
    pid = os.environ.get("LISTEN_PID", "")
    return pid.isdigit() and int(pid) == os.getpid() and "LISTEN_FDS" in os.environ


_KIND = {
    socket.SOCK_STREAM: "a listening stream socket (ListenStream=)",
    socket.SOCK_SEQPACKET: "a listening seqpacket socket (ListenSequentialPacket=)",
    socket.SOCK_DGRAM: "a datagram socket (ListenDatagram=)",
}


def inherited_listener(sock_type: int = socket.SOCK_STREAM) -> tuple[socket.socket, Endpoint]:
    """The one socket systemd passed, non-blocking, and its endpoint.

    ``sock_type`` is what ``--type`` asks for: a stream or seqpacket socket must be listening,
    a datagram socket is bound only. Raises :class:`EndpointError` (one line for the user) when
    there is none, more than one, or fd 3 is not the kind asked for. The ``LISTEN_*``
    variables are removed either way, as sd_listen_fds(unset_environment=1) does, so nothing
    we start inherits them.
    """
    try:
        if not activated():
            raise EndpointError(
                "--systemd: no socket passed (LISTEN_PID is not this process or LISTEN_FDS unset)"
            )
        count = os.environ["LISTEN_FDS"]
        if count != "1":
            raise EndpointError(
                f"--systemd: LISTEN_FDS={count}; fastsock serves exactly one listening socket"
            )
    finally:
        for name in _ENV:
            os.environ.pop(name, None)
    fd = SD_LISTEN_FDS_START
    try:
        sock = socket.socket(fileno=fd)
    except OSError as err:
        raise EndpointError(f"--systemd: fd {fd} is not a socket ({err.strerror})") from None
    try:
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        if sock.type != sock_type or (sock_type != socket.SOCK_DGRAM and not listening):
            raise EndpointError(f"--systemd: fd {fd} is not {_KIND[sock_type]}")
        endpoint = _endpoint_of(sock)
    except BaseException:
        sock.detach()  # not ours to close: leave fd 3 as we found it
        raise
    # Like sd_listen_fds(): our children (exec'd ones) must not inherit it.
    fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.fcntl(fd, fcntl.F_GETFD) | fcntl.FD_CLOEXEC)
    sock.setblocking(False)
    return sock, endpoint


def _endpoint_of(sock: socket.socket) -> Endpoint:
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        if isinstance(name, bytes):  # abstract: a leading NUL
            name = "@" + os.fsdecode(name[1:]) if name[:1] == b"\0" else os.fsdecode(name)
        if not name:
            raise EndpointError("--systemd: the passed UNIX socket has no name")
        return unix_endpoint(name)
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        return tcp_endpoint(name[0], name[1])
    raise EndpointError(f"--systemd: unsupported socket family {sock.family!r}")
