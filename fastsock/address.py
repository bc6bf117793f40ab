"""Endpoints: parse and format them, and make listening and connecting sockets.

An endpoint is written the way the ready line prints it:

    tcp://127.0.0.1:8000    tcp://[::1]:8000    unix:/run/app.sock    unix:@abstract

AF_UNIX addresses are file names (or, with a leading ``@``, names in Linux's abstract namespace,
which have no file and vanish with the last socket); AF_INET/AF_INET6 addresses are IP + port.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from dataclasses import dataclass

# sockaddr_un.sun_path is 108 bytes on Linux and a path needs its terminating NUL.
UNIX_PATH_MAX = 107

# ``--type``: the socket type. stream (TCP or UNIX), seqpacket (UNIX only: connections like a
# stream, message boundaries like datagrams), dgram (UDP or UNIX: no connections).
SOCK_TYPES = {
    "stream": socket.SOCK_STREAM,
    "seqpacket": socket.SOCK_SEQPACKET,
    "dgram": socket.SOCK_DGRAM,
}


class EndpointError(Exception):
    """A user-facing problem with an endpoint; ``str()`` is a one-line message.
    ``names_forms``: the message shows the accepted forms already (a caller that adds its own
    list of them leaves it out)."""

    def __init__(self, message: str, *, names_forms: bool = False) -> None:
        # Paths and hosts come from the user and may hold newlines or other control
        # characters: escape them so the message stays one printable line (found by make fuzz).
        super().__init__("".join(c if c.isprintable() else repr(c)[1:-1] for c in message))
        self.names_forms = names_forms


@dataclass(frozen=True)
class Endpoint:
    """Where to listen or connect.

    ``family`` is ``AF_INET``, ``AF_INET6`` or ``AF_UNIX``; for TCP ``host``/``port`` are set,
    for UNIX ``path`` is a file name or ``@name`` for the abstract namespace.
    """

    family: int
    host: str = ""
    port: int = 0
    path: str = ""

    @property
    def is_unix(self) -> bool:
        return self.family == socket.AF_UNIX

    @property
    def is_abstract(self) -> bool:
        return self.is_unix and self.path.startswith("@")

    @property
    def sockaddr(self) -> str | bytes | tuple:
        """The address as ``socket.bind``/``connect`` take it."""
        if self.is_abstract:
            return b"\0" + os.fsencode(self.path[1:])
        if self.is_unix:
            return self.path
        if self.family == socket.AF_INET6:
            return (self.host, self.port, 0, 0)
        return (self.host, self.port)

    @property
    def transport(self) -> str:
        """``unix``, ``tcp`` or ``tcp6``: the name the benchmark results use."""
        if self.is_unix:
            return "unix"
        return "tcp6" if self.family == socket.AF_INET6 else "tcp"

    def __str__(self) -> str:
        if self.is_unix:
            return f"unix:{self.path}"
        if self.family == socket.AF_INET6:
            return f"tcp://[{self.host}]:{self.port}"
        return f"tcp://{self.host}:{self.port}"


def tcp_endpoint(host: str, port: int) -> Endpoint:
    """An AF_INET or AF_INET6 endpoint; ``host`` must be an IP literal (we never resolve names
    behind the user's back, so what is printed is what is used)."""
    if not 0 <= port <= 65535:
        raise EndpointError(f"port {port} is out of range 0-65535")
    host = host.strip("[]")
    if host in ("localhost", ""):
        host = "127.0.0.1"
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except (OSError, ValueError):  # ValueError: a NUL byte (found by make fuzz)
            continue
        return Endpoint(family, host=host, port=port)
    raise EndpointError(f"host {host!r} is not an IPv4 or IPv6 address")


def unix_endpoint(path: str) -> Endpoint:
    """An AF_UNIX endpoint: a file name, or ``@name`` for the abstract namespace."""
    if not path or path == "@":
        raise EndpointError("UNIX socket path is empty")
    if "\0" in path:
        raise EndpointError("UNIX socket path contains a NUL byte")
    size = len(os.fsencode(path))  # the abstract '@' stands for the leading NUL: same length
    if size > UNIX_PATH_MAX:
        raise EndpointError(
            f"UNIX socket path is {size} bytes, longer than the kernel limit of "
            f"{UNIX_PATH_MAX}: {path}"
        )
    return Endpoint(socket.AF_UNIX, path=path)


def parse_endpoint(text: str) -> Endpoint:
    """Parse ``tcp://HOST:PORT``, ``tcp://[V6]:PORT``, ``unix:PATH`` or ``unix:@NAME``."""
    if text.startswith("unix:"):
        return unix_endpoint(text[len("unix:") :])
    for scheme in ("tcp://", "udp://"):  # the same address; the socket type is not in it
        if text.startswith(scheme):
            host, sep, port = text[len(scheme) :].rpartition(":")
            if not sep or not port.isdigit():
                raise EndpointError(f"endpoint {text!r} needs a port: {scheme}HOST:PORT")
            # As the ready line writes it: an IPv6 address in brackets, nothing else in them
            # (tcp://[::1:80 and tcp://::1:80 are typos, not a guess to make).
            bracketed = host.startswith("[") and host.endswith("]")
            if (":" in host) != bracketed or host.count("[") + host.count("]") > 2 * bracketed:
                raise EndpointError(
                    f"endpoint {text!r}: an IPv6 address goes in brackets and an IPv4 one "
                    f"without: {scheme}[::1]:PORT or {scheme}127.0.0.1:PORT",
                    names_forms=True,
                )
            return tcp_endpoint(host, int(port))
    raise EndpointError(
        f"endpoint {text!r} must be tcp://HOST:PORT, udp://HOST:PORT, unix:PATH or unix:@NAME",
        names_forms=True,
    )


def endpoint_text(endpoint: Endpoint, sock_type: int = socket.SOCK_STREAM) -> str:
    """How the ready line names an endpoint: ``udp://`` for an IP datagram socket, else as
    ``str(endpoint)`` (a UNIX name does not say its type: the client is told by ``--type``)."""
    text = str(endpoint)
    if sock_type == socket.SOCK_DGRAM and not endpoint.is_unix:
        return "udp://" + text[len("tcp://") :]
    return text


def endpoint_from_options(host: str, port: int | None, unix: str | None) -> Endpoint:
    """The endpoint the ``--host/--port/--unix`` options name (exactly one of port or unix)."""
    if unix is not None and port is not None:
        raise EndpointError("give either --port or --unix, not both")
    if unix is not None:
        return unix_endpoint(unix)
    if port is None:
        raise EndpointError("give --port N (0 picks a free port) or --unix PATH")
    return tcp_endpoint(host, port)


def _describe(err: OSError) -> str:
    return os.strerror(err.errno).lower() if err.errno else str(err)


def _check_unix_path(path: str, sock_type: int = socket.SOCK_STREAM) -> None:
    """Make ``path`` free to bind: refuse anything that is not a stale socket of ours to take."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        raise EndpointError(f"cannot listen on unix:{path}: directory {directory} does not exist")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise EndpointError(f"refusing to replace unix:{path}: it exists and is not a socket")
    # Probe with the type we will bind: connecting a stream socket to a live datagram socket
    # fails with EPROTOTYPE, not with the refusal that marks a stale file.
    probe = socket.socket(socket.AF_UNIX, sock_type)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        # Nobody listens: a socket file left behind by a process that died. Safe to replace.
        os.unlink(path)
        return
    except OSError as err:
        if err.errno == errno.EPROTOTYPE:
            raise EndpointError(
                f"unix:{path} is in use by a socket of another type (see --type)"
            ) from None
        raise EndpointError(f"cannot check existing socket unix:{path}: {_describe(err)}") from None
    finally:
        probe.close()
    raise EndpointError(f"unix:{path} is in use: another server answers on it")


def listen(
    endpoint: Endpoint,
    backlog: int = 1024,
    unix_mode: int | None = None,
    sock_type: int = socket.SOCK_STREAM,
) -> socket.socket:
    """A non-blocking socket bound to ``endpoint``: listening for stream and seqpacket, bound
    only for dgram (a datagram socket has no connections to accept).

    Raises :class:`EndpointError` with a one-line message for every user-caused failure.
    """
    if sock_type == socket.SOCK_SEQPACKET and not endpoint.is_unix:
        raise EndpointError("--type seqpacket needs a UNIX socket (--unix PATH): TCP has none")
    if endpoint.is_unix and not endpoint.is_abstract:
        _check_unix_path(endpoint.path, sock_type)
    sock = socket.socket(endpoint.family, sock_type)
    try:
        if not endpoint.is_unix and sock_type == socket.SOCK_STREAM:
            # Restarting a server must not wait out TIME_WAIT of the previous one's connections.
            # (Not for UDP: there it would let a second server bind the same port.)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if endpoint.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(endpoint.sockaddr)
        if unix_mode is not None and endpoint.is_unix and not endpoint.is_abstract:
            # Before listen(): nobody can connect yet, so there is no window with wrong permissions.
            os.chmod(endpoint.path, unix_mode)
        if sock_type != socket.SOCK_DGRAM:
            sock.listen(backlog)
        sock.setblocking(False)
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            reason = "address already in use"
        elif err.errno == errno.EADDRNOTAVAIL:
            reason = "address not available on this machine"
        else:
            reason = _describe(err)
        where = endpoint_text(endpoint, sock_type)
        raise EndpointError(f"cannot listen on {where}: {reason}") from None
    return sock


def bound_endpoint(sock: socket.socket, requested: Endpoint) -> Endpoint:
    """The endpoint a listening socket really has (the real port after ``--port 0``)."""
    if requested.is_unix:
        return requested
    return Endpoint(requested.family, host=requested.host, port=sock.getsockname()[1])


def connect(
    endpoint: Endpoint, timeout: float | None = 5.0, sock_type: int = socket.SOCK_STREAM
) -> socket.socket:
    """A connected, blocking socket (TCP_NODELAY on TCP). Raises ``OSError`` on failure.

    A UNIX datagram client is bound to an abstract name first, so a server can reply to it."""
    sock = socket.socket(endpoint.family, sock_type)
    try:
        sock.settimeout(timeout)
        if endpoint.is_unix and sock_type == socket.SOCK_DGRAM:
            sock.bind(b"")  # autobind: the kernel picks a unique abstract name
        sock.connect(endpoint.sockaddr)
        if not endpoint.is_unix and sock_type == socket.SOCK_STREAM:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        sock.close()
        raise
    return sock


def unix_file_identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of a socket file, to remove only the file we created."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISSOCK(st.st_mode) else None


def remove_unix_file(path: str, identity: tuple[int, int] | None) -> None:
    """Remove our socket file, unless someone replaced it with another file since."""
    if identity is not None and unix_file_identity(path) == identity:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
