"""Response heads and small generated bodies (errors, redirects, directory listings)."""

from __future__ import annotations

import html
import mimetypes
import os
from http import HTTPStatus
from urllib.parse import quote

SERVER = "fastsock"
ALLOW = "GET, HEAD"
MAX_LISTING = 10_000  # entries shown in a directory listing; the rest are counted, not listed

_REASONS = {s.value: s.phrase for s in HTTPStatus}
_types: dict[str, str] = {}


def reason(status: int) -> str:
    return _REASONS.get(status, "Unknown")


def content_type(name: str) -> str:
    """The file's media type by extension (mimetypes), cached per extension."""
    ext = os.path.splitext(name)[1].lower()
    ctype = _types.get(ext)
    if ctype is None:
        guessed, encoding = mimetypes.guess_type("x" + ext, strict=False)
        if guessed is None or encoding is not None:
            # A .gz is bytes to us: we do not set Content-Encoding, so no text/plain+gzip.
            guessed = "application/octet-stream"
        ctype = _types[ext] = guessed
    return ctype


def head(status: int, date: str, fields: str, keep_alive: bool, http10: bool) -> bytes:
    """A response head: status line, Date/Server, ``fields`` (``Name: value\\r\\n`` lines) and
    the Connection field when it differs from the version's default."""
    if not keep_alive:
        conn = "Connection: close\r\n"
    elif http10:
        conn = "Connection: keep-alive\r\n"
    else:
        conn = ""
    return (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\nDate: {date}\r\nServer: {SERVER}\r\n"
        f"{fields}{conn}\r\n"
    ).encode("latin-1")


def simple(
    status: int,
    date: str,
    keep_alive: bool,
    http10: bool,
    with_body: bool = True,
    extra: str = "",
) -> bytes:
    """A complete response with a one-line text body (for errors and redirects)."""
    body = f"{status} {reason(status)}\n".encode()
    fields = f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n{extra}"
    data = head(status, date, fields, keep_alive, http10)
    return data + body if with_body else data


def listing(url_path: str, names: list[tuple[str, bool]]) -> bytes:
    """An HTML index of a directory: ``names`` are (name, is_dir) pairs, already sorted."""
    title = html.escape(url_path)
    lines = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>Index of {title}</title></head>",
        f"<body><h1>Index of {title}</h1><ul>",
    ]
    if url_path != "/":
        lines.append('<li><a href="../">../</a></li>')
    for name, is_dir in names[:MAX_LISTING]:
        slash = "/" if is_dir else ""
        href = quote(os.fsencode(name)) + slash
        lines.append(f'<li><a href="{href}">{html.escape(name)}{slash}</a></li>')
    if len(names) > MAX_LISTING:
        lines.append(f"<li>... and {len(names) - MAX_LISTING} more</li>")
    lines.append("</ul></body></html>\n")
    return "\n".join(lines).encode("utf-8", "surrogateescape")
