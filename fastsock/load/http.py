"""The http workload's protocol side: the request, a strict response-head parser, the probe.

``fastsock load --http PATH`` sends ``GET PATH HTTP/1.1`` over keep-alive connections and checks
every answer against what a probe learnt before the run: status 200, the same Content-Length,
and the same CRC-32 of the body. The event loop lives in :mod:`fastsock.load.http_engine`; this
module is plain functions and one blocking probe, testable without a load run.

The parser only needs the status, Content-Length and Connection, so it is small, and strict on
purpose: anything a correct HTTP/1.1 static-file server would not send (another version, no or a
doubled Content-Length, Transfer-Encoding, obsolete line folding, control bytes, bare LF) is an
error, not something to guess around -- a load client that guesses measures the wrong thing.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from fastsock.address import Endpoint
from fastsock.load.conn import ConnectError, connect_many

MAX_HEAD = 64 * 1024  # a response head longer than this (no blank line yet) is an error
MAX_PATH = 8 * 1024
HEAD_END = b"\r\n\r\n"
PROBE_BUFFER = 256 * 1024

# status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 4); some servers drop
# the SP before an empty reason, so it is optional too.
_STATUS_LINE = re.compile(rb"HTTP/1\.1 ([1-9][0-9][0-9])(?: ([\t\x20-\x7e\x80-\xff]*))?")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# A request-target we put into the request line verbatim: origin-form, visible ASCII only.
_PATH = re.compile(r"/[\x21-\x7e]*")


class HeadError(ValueError):
    """A response head we refuse; ``str()`` is a short one-line reason."""


class HttpProbeError(ConnectError):
    """The probe before the run failed (404, no Content-Length, Connection: close, a bad head,
    a short body): the run cannot be verified, so it does not start. ``kind`` is ``http``."""

    def __init__(self, message: str) -> None:
        super().__init__("http", message)


@dataclass(frozen=True)
class ResponseHead:
    """What the client needs from a response head. ``length`` is None without Content-Length."""

    status: int
    reason: str
    length: int | None
    close: bool


@dataclass(frozen=True)
class HttpTarget:
    """The request every connection repeats and the answer it must get (from the probe)."""

    path: str
    request: bytes
    length: int  # Content-Length of the 200 answer: the body size
    crc: int  # zlib.crc32 of the body


def path_problem(path: str) -> str | None:
    """Why ``path`` cannot be sent as a request-target (None if it can). It goes into the
    request line as it is, so it must be visible ASCII starting with /: percent-encode the rest."""
    if len(path) > MAX_PATH:
        return f"--http PATH is longer than {MAX_PATH} characters"
    if not _PATH.fullmatch(path) or "#" in path:
        return (
            f"--http PATH must be a URL path starting with / in visible ASCII without spaces or #"
            f" (percent-encode the rest), not {path!r}"
        )
    return None


def format_request(path: str) -> bytes:
    """The one request every connection sends, as bytes (pipelining sends copies back to back).
    HTTP/1.1 keeps the connection alive by default, so no Connection header is needed."""
    problem = path_problem(path)
    if problem:
        raise ValueError(problem)
    return f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode("ascii")


def parse_head(head: bytes) -> ResponseHead:
    """Parse a response head: the bytes before the blank line (``head + b"\\r\\n\\r\\n"`` was
    received). Raises :class:`HeadError` for anything odd."""
    lines = head.split(b"\r\n")
    match = _STATUS_LINE.fullmatch(lines[0])
    if match is None:
        raise HeadError(f"bad status line {lines[0][:80]!r}")
    status = int(match[1])
    if status < 200:
        # GET never asks for 100-continue and we do not upgrade: an interim answer is a bug.
        raise HeadError(f"unexpected interim response {status}")
    length: int | None = None
    close = False
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        # No colon, a space before it (forbidden) or a leading space (obsolete line folding).
        if not colon or not _TOKEN.fullmatch(name):
            raise HeadError(f"bad header line {line[:80]!r}")
        value = value.strip(b" \t")
        if _BAD_VALUE.search(value):
            raise HeadError(f"control byte in header {name.decode('ascii')}")
        lname = name.lower()
        if lname == b"content-length":
            if length is not None:
                raise HeadError("more than one Content-Length")
            if not value.isdigit() or len(value) > 18:
                raise HeadError(f"bad Content-Length {value[:40]!r}")
            length = int(value)
        elif lname == b"transfer-encoding":
            raise HeadError("Transfer-Encoding is not supported (a file needs a Content-Length)")
        elif lname == b"connection":
            tokens = {token.strip(b" \t").lower() for token in value.split(b",")}
            close = b"close" in tokens
    reason = (match[2] or b"").decode("latin-1")
    return ResponseHead(status, reason, length, close)


def describe_status(head: ResponseHead) -> str:
    return f"{head.status} {head.reason}".rstrip()


def probe(endpoint: Endpoint, path: str, timeout: float) -> HttpTarget:
    """GET ``path`` once on its own connection: the body length and CRC-32 every response of
    the run must match. Raises :class:`ConnectError` when the server cannot be reached and
    :class:`HttpProbeError` when its answer cannot be used (not 200, no Content-Length,
    ``Connection: close``, a bad head, a short body, no answer within ``timeout`` per read)."""
    request = format_request(path)
    (sock,) = connect_many(endpoint, 1, timeout)
    what = f"GET {path} from {endpoint}"
    try:
        sock.setblocking(True)
        sock.settimeout(timeout)
        sock.sendall(request)
        buf = bytearray(PROBE_BUFFER)
        view = memoryview(buf)
        got = b""
        while True:
            end = got.find(HEAD_END)
            if end >= 0:
                break
            if len(got) > MAX_HEAD:
                raise HttpProbeError(f"{what}: response head longer than {MAX_HEAD} bytes")
            n = sock.recv_into(buf)
            if not n:
                raise HttpProbeError(f"{what}: server closed the connection without an answer")
            got += view[:n]
        try:
            head = parse_head(got[:end])
        except HeadError as err:
            raise HttpProbeError(f"{what}: bad response head: {err}") from None
        if head.status != 200:
            raise HttpProbeError(f"{what}: server answered {describe_status(head)}")
        if head.length is None:
            raise HttpProbeError(f"{what}: the answer has no Content-Length")
        if head.close:
            raise HttpProbeError(
                f"{what}: server closes the connection after the answer (Connection: close); "
                f"--http needs keep-alive"
            )
        body = got[end + len(HEAD_END) :]
        if len(body) > head.length:
            raise HttpProbeError(f"{what}: more bytes than the Content-Length {head.length}")
        crc = zlib.crc32(body)
        left = head.length - len(body)
        while left:
            n = sock.recv_into(buf, min(left, len(buf)))
            if not n:
                raise HttpProbeError(
                    f"{what}: server closed after {head.length - left} of {head.length} body bytes"
                )
            crc = zlib.crc32(view[:n], crc)
            left -= n
        return HttpTarget(path, request, head.length, crc)
    except TimeoutError:
        raise HttpProbeError(f"{what}: no answer within {timeout:g} s") from None
    except OSError as err:
        raise HttpProbeError(f"{what}: {err.strerror or err}") from None
    finally:
        sock.close()
