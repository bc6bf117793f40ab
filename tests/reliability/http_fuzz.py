"""What the HTTP fuzzers (hypothesis in CI, atheris in ``make fuzz``) share: a site with a
secret next to it, one handler run over an input, and the checks on what came out.

The property: whatever bytes arrive, in whatever pieces, the handler raises nothing, every
answer starts with a valid HTTP/1.1 status line and is a well-formed response, and no byte of a
file outside the root is ever sent (the secret sits next to the root, and links inside the root
point at it).
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import shutil
import tempfile

from fastsock.address import EndpointError, parse_endpoint
from fastsock.handlers.http import HttpHandler, Site
from fastsock.http.config import HttpConfig
from tests.http.test_handler import FakeTransport

SECRET = b"SECRET-" + secrets.token_hex(16).encode()
STATUS_LINE = re.compile(rb"HTTP/1\.1 ([1-5]\d\d) [!-~][ -~]*\r\n")
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)\r\n", re.I)


def make_site_dir(base: str | None = None) -> str:
    """``base/root`` is served; ``base/secret.txt`` and links to it must never be.

    ``base`` None: a temporary directory removed at exit. Else ``base`` is emptied and reused:
    ``make fuzz`` passes one, because libFuzzer ends the process without running Python's
    exit handlers, which left a temporary directory behind on every run."""
    if base is None:
        base = tempfile.mkdtemp(prefix="fastsock-fuzz-")
        atexit.register(shutil.rmtree, base, True)
    else:
        shutil.rmtree(base, ignore_errors=True)
        os.makedirs(base)
    root = os.path.join(base, "root")
    os.makedirs(os.path.join(root, "dir"))
    with open(os.path.join(base, "secret.txt"), "wb") as f:
        f.write(SECRET * 4)
    with open(os.path.join(root, "a.txt"), "wb") as f:
        f.write(b"alpha\n")
    with open(os.path.join(root, "dir", "index.html"), "wb") as f:
        f.write(b"<p>index</p>")
    os.symlink(os.path.join(base, "secret.txt"), os.path.join(root, "link.txt"))
    os.symlink(base, os.path.join(root, "up"))
    return root


def make_site(root: str) -> Site:
    return Site(HttpConfig(root=root, list_dirs=True, header_timeout=1.0, max_pipeline=8))


def run_handler(site: Site, chunks: list[bytes], eof: bool = True) -> FakeTransport:
    """Feed ``chunks`` through one reused buffer (as the connection does), then EOF, then let
    the header timeout fire. Raises whatever the handler raises."""
    handler = HttpHandler(site)
    transport = FakeTransport()
    handler.connection_made(transport)
    for chunk in chunks:
        if transport.closed:
            break
        buf = bytearray(chunk)
        handler.data_received(memoryview(buf))
        buf[:] = b"\xff" * len(buf)
    if not transport.closed:
        transport.advance(5.0)  # the header timeout (1 s) fires for an unfinished head
    if eof and not transport.closed:
        handler.eof_received()
    handler.connection_lost()
    return transport


def check_output(out: bytes) -> int:
    """Raise AssertionError unless ``out`` is a sequence of well-formed HTTP/1.1 responses and
    shows no secret; returns how many responses there were.

    Whether a response has a body depends on the request (HEAD has none), so a head with a
    Content-Length is followed either by that many bytes or by nothing (the next response)."""
    assert SECRET not in out, "a file outside the root was served"
    pos = count = 0
    while pos < len(out):
        match = STATUS_LINE.match(out, pos)
        assert match, f"no HTTP/1.1 status line at byte {pos}: {out[pos : pos + 60]!r}"
        end = out.find(b"\r\n\r\n", pos)
        assert end > 0, "a response head without its end"
        head = out[pos : end + 2]
        pos = end + 4
        count += 1
        length = CONTENT_LENGTH.search(head)
        if length is None:
            continue
        size = int(length.group(1))
        with_body = pos + size
        if with_body == len(out) or STATUS_LINE.match(out, with_body):
            pos = with_body
        elif not (pos == len(out) or STATUS_LINE.match(out, pos)):
            raise AssertionError(f"a body of {size} bytes is not followed by a response")
    return count


_SITE: Site | None = None


def replay(data: bytes) -> None:
    """One input, either target; raises on a failed check (used by the regression test too)."""
    if not data:
        return
    target, rest = data[0], data[1:]
    if target & 1:
        try:
            endpoint = parse_endpoint(rest.decode("utf-8", "surrogateescape"))
        except EndpointError as err:
            assert "\n" not in str(err)
            return
        assert parse_endpoint(str(endpoint)) == endpoint
        return
    # Up to 4 cut points from the next 4 bytes (scaled to the rest of the input).
    cuts, body = rest[:4], rest[4:]
    points = sorted({c * len(body) // 255 for c in cuts})
    chunks = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True) if b > a]
    global _SITE
    if _SITE is None:
        _SITE = make_site(make_site_dir())
    transport = run_handler(_SITE, chunks, eof=bool(target & 2))
    check_output(bytes(transport.out))
