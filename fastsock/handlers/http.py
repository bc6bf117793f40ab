"""http: HTTP/1.1 static files from a root directory -- GET and HEAD, keep-alive, pipelining.

The handler is sans-IO like the others: httptools (llhttp) parses what the connection delivers
and calls back; answers go out through the transport as a head (``write_more``) and a file body
(``sendfile``, which the connection sends with non-blocking ``os.sendfile`` or its read+send
fallback). Pipelined requests queue in order; at most one file body is in flight per connection,
so open descriptors are bounded by the connection count, and each is closed in the body's
``on_done`` callback whatever happens to the connection.

An error that leaves the byte stream in doubt (a parse error, a head or body over the limits, a
head that does not arrive in time) is answered and the connection closed; others (404, 405,
416...) keep it alive.
"""

from __future__ import annotations

import os
import stat
from collections import deque
from time import monotonic

import httptools

from fastsock.handlers.base import Cancellable, Handler, Transport
from fastsock.http import responses
from fastsock.http.conditional import (
    UNSATISFIABLE,
    DateCache,
    http_date,
    if_range_allows,
    not_modified,
    parse_range,
)
from fastsock.http.config import HttpConfig
from fastsock.http.filecache import FileCache, OpenFile
from fastsock.http.paths import HttpError, Root, split_target

_GET_HEAD = (b"GET", b"HEAD")
# Request headers we act on -> slot in Request.fields.
_INM, _IMS, _RANGE, _IF_RANGE = range(4)
_SLOTS = {
    b"if-none-match": _INM,
    b"if-modified-since": _IMS,
    b"range": _RANGE,
    b"if-range": _IF_RANGE,
}
# Either one asking for keep-alive is what lets llhttp keep a request other than HTTP/1.1 alive.
_CONNECTION_FIELDS = (b"connection", b"proxy-connection")
_INTERESTING_LENGTHS = frozenset(
    len(name) for name in (*_SLOTS, b"content-length", *_CONNECTION_FIELDS)
)
_NO_FIELDS: list[bytes | None] = [None, None, None, None]  # shared, never written to
_CLOSING_STATUSES = frozenset({400, 408, 413, 414, 431, 501, 505})
_PARSER_ERRORS = (httptools.HttpParserError, httptools.HttpParserUpgrade)
# How often one read may hit an Upgrade request we decline (each resumes the parser).
_MAX_UPGRADES_PER_READ = 64


class Site:
    """What every connection of one server shares: root, config, open files, cached strings."""

    def __init__(self, config: HttpConfig) -> None:
        self.config = config
        self.root = Root(config.root)
        self.dates = DateCache()
        self.files = FileCache(
            config.open_files,
            config.open_files_valid,
            config.memory_cache,
            config.memory_file_max,
        )
        self._last_modified: dict[int, str] = {}

    def last_modified(self, mtime: int) -> str:
        value = self._last_modified.get(mtime)
        if value is None:
            if len(self._last_modified) > 4096:
                self._last_modified.clear()  # bounded; files rarely have that many mtimes
            value = self._last_modified[mtime] = http_date(mtime)
        return value

    def close(self) -> None:
        """Close the cached files (bodies still in flight close theirs when done)."""
        self.files.clear()


class HttpHandlerFactory:
    """Makes one handler per connection over one :class:`Site`; ``close()`` when the server
    stops."""

    def __init__(self, config: HttpConfig) -> None:
        self.site = Site(config)

    def __call__(self) -> HttpHandler:
        return HttpHandler(self.site)

    def close(self) -> None:
        self.site.close()


def http_handler_factory(config: HttpConfig) -> HttpHandlerFactory:
    return HttpHandlerFactory(config)


class Request:
    """A parsed request waiting for its answer (or an error to send in its place)."""

    __slots__ = ("method", "target", "http10", "keep_alive", "fields", "status")

    def __init__(
        self,
        method: bytes,
        target: bytes,
        http10: bool,
        keep_alive: bool,
        fields: list[bytes | None],
        status: int = 0,
    ) -> None:
        self.method = method
        self.target = target
        self.http10 = http10
        self.keep_alive = keep_alive
        self.fields = fields
        self.status = status  # non-zero: answer with this error status instead


class HttpHandler(Handler):
    def __init__(self, site: Site) -> None:
        super().__init__()
        self.site = site
        self._config = site.config
        self._parser = httptools.HttpRequestParser(self)
        self._pending: deque[Request] = deque()
        self._body: OpenFile | None = None  # the file whose body is in flight (one at most)
        self._serving = False  # inside _serve: on_done must not start another answer
        self._dead = False  # read no further requests (after an error or a closing request)
        self._eof = False
        self._held = False  # we asked the transport to stop reading
        # The message being parsed.
        self._url = b""
        self._fields: list[bytes | None] = _NO_FIELDS  # replaced when a header is of interest
        self._connection_field = False  # a Connection or Proxy-Connection field came
        self._n_fields = 0
        self._field_bytes = 0  # header names + values
        self._body_bytes = 0
        self._in_message = False
        self._begun = 0  # messages begun so far (tells one read's partial head from the next)
        self._partial = 0  # bytes of a message still incomplete after earlier reads
        # Header timeout (see _tick): one timer per connection, nothing per request.
        self._timer: Cancellable | None = None
        self._timeout = self._config.header_timeout
        self._tick_mark = -1  # self._begun at the last tick
        self._ticks = 0  # consecutive ticks that saw the same message unfinished
        self._max_fields = self._config.max_headers
        self._max_field_bytes = self._config.max_header_bytes

    # -- connection events --------------------------------------------------------------------
    def connection_made(self, transport: Transport) -> None:
        super().connection_made(transport)
        if self._timeout > 0:
            self._timer = transport.call_later(self._timeout / 2, self._tick)

    def data_received(self, data: memoryview) -> None:
        if self._dead:
            return
        begun, was_in_message = self._begun, self._in_message
        try:
            self._parser.feed_data(data)
        except _PARSER_ERRORS as exc:
            self._parse_error(data, exc)
        if self._in_message and not self._dead:
            self._partial_message(len(data), begun, was_in_message)
        if self._pending and not self._serving:
            self._serve()
        if (self._dead or self._pending) and not self._held:
            self._hold_if_behind()

    def _hold_if_behind(self) -> None:
        transport = self.transport
        if transport is not None and (
            self._dead or len(self._pending) >= self._config.max_pipeline
        ):
            self._held = True
            transport.pause_reading()

    def _partial_message(self, nbytes: int, begun: int, was_in_message: bool) -> None:
        # llhttp buffers nothing, but httptools joins a header's pieces until it ends: a head
        # that never ends would grow without bound. Count the bytes of reads that only
        # continued an unfinished message (the read that began it is bounded by the read size).
        if was_in_message and begun == self._begun:
            self._partial += nbytes
        else:
            self._partial = 0
        config = self._config
        if self._partial > config.max_url + config.max_header_bytes + config.max_body:
            self._fail(431)

    def _parse_error(self, data: memoryview, exc: Exception) -> None:
        """feed_data raised: an Upgrade we decline, or a request we cannot parse."""
        for _ in range(_MAX_UPGRADES_PER_READ):
            if isinstance(exc, httptools.HttpParserCallbackError):
                raise exc  # our own bug, not the client's: the connection logs and counts it
            if isinstance(exc, httptools.HttpParserUpgrade):
                # We decline upgrades (RFC 9110 7.8: answer as if Upgrade were absent). CONNECT
                # was answered 405 and closes; otherwise parse on after the request that asked.
                data = data[exc.args[0] :]
                if self._dead or not data:
                    return
                try:
                    self._parser.feed_data(data)
                    return
                except _PARSER_ERRORS as again:
                    exc = again
                continue
            self._fail(501 if isinstance(exc, httptools.HttpParserInvalidMethodError) else 400)
            return
        self._fail(400)

    def eof_received(self) -> None:
        self._eof = True
        if not self._pending and self._body is None and self.transport is not None:
            self.transport.close()

    def connection_lost(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending.clear()
        self._dead = True
        super().connection_lost()

    # -- parser callbacks (httptools) ---------------------------------------------------------
    # These run for every request: they are kept short (a 1 KiB file is mostly this work).
    def on_message_begin(self) -> None:
        self._url = b""
        self._fields = _NO_FIELDS
        self._connection_field = False
        self._n_fields = self._field_bytes = self._body_bytes = 0
        self._in_message = True
        self._begun += 1

    def on_url(self, url: bytes) -> None:
        if self._dead:
            return
        self._url += url  # llhttp may deliver the target in pieces across reads
        if len(self._url) > self._config.max_url:
            self._fail(414)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._dead:
            return
        self._n_fields += 1
        self._field_bytes += len(name) + len(value)
        if self._n_fields > self._max_fields or self._field_bytes > self._max_field_bytes:
            self._fail(431)
            return
        if len(name) in _INTERESTING_LENGTHS:  # most fields (Host, User-Agent...) stop here
            self._interesting_header(name.lower(), value)

    def _interesting_header(self, name: bytes, value: bytes) -> None:
        slot = _SLOTS.get(name)
        if slot is not None:
            fields = self._fields
            if fields is _NO_FIELDS:
                fields = self._fields = [None, None, None, None]
            previous = fields[slot]
            if previous is not None and slot == _INM:
                value = previous + b", " + value  # a list header may come in several lines
            fields[slot] = value
        elif name in _CONNECTION_FIELDS:
            self._connection_field = True
        elif name == b"content-length" and _too_long(value, self._config.max_body):
            self._fail(413)  # refuse before reading a body we would only drop

    def on_body(self, body: bytes) -> None:
        if self._dead:
            return
        self._body_bytes += len(body)
        if self._body_bytes > self._config.max_body:
            self._fail(413)  # a chunked body over the limit

    def on_message_complete(self) -> None:
        # (No on_headers_complete: one callback fewer per request. So a body counts against
        # the header timeout too; GETs have none.)
        self._in_message = False
        if self._dead:
            return
        parser = self._parser
        method = parser.get_method()
        keep_alive = parser.should_keep_alive()
        transport = self.transport
        entry = None
        if (
            keep_alive
            and not self._connection_field
            and self._fields is _NO_FIELDS
            and method == b"GET"
            and not (self._pending or self._body is not None or self._serving)
            and transport is not None
        ):
            # The common request: a plain keep-alive GET with nothing before it. llhttp parses
            # only HTTP 0.9, 1.0, 1.1 and 2.0 and keeps any but 1.1 alive only when a
            # (Proxy-)Connection field asks, so this is HTTP/1.1: known without
            # get_http_version(), which formats a string (a tenth of the handler's time here).
            # A cached file in memory is answered in one write, without a Request or more
            # calls. A target with a query or in absolute form is no cache key: it goes below.
            version = "1.1"
            entry = self.site.files.get(self._url, monotonic())
            if entry is not None and entry.body is not None:
                date = self.site.dates.now()
                if entry.head_date is not date:
                    _plain_head(entry, date)
                transport.write(entry.response)
                return
        else:
            version = parser.get_http_version()
            if version != "1.1" and version != "1.0":
                self._fail(505)
                return
            keep_alive = keep_alive and method != b"CONNECT"
        request = Request(method, self._url, version == "1.0", keep_alive, self._fields)
        if not keep_alive:
            self._dead = True  # answer this one, then close: ignore what follows
        if self._pending or self._body is not None or self._serving or transport is None:
            self._pending.append(request)
            return
        # Nothing before it waits: answer at once (most requests), skipping the queue.
        self._serving = True
        try:
            self._respond(transport, request, entry)
        finally:
            self._serving = False
        if not request.keep_alive:
            transport.close()

    def _fail(self, status: int) -> None:
        """Answer ``status`` after the requests already queued, then close."""
        if self._dead:
            return
        self._dead = True
        http10 = False
        try:
            http10 = self._parser.get_http_version() == "1.0"
        except Exception:
            pass
        self._pending.append(Request(b"", b"", http10, False, [None] * 4, status))

    # -- header timeout -----------------------------------------------------------------------
    def _tick(self) -> None:
        """Every header_timeout/2: 408 for a head unfinished at three ticks in a row.

        So a head (or, on a new connection, the first one) gets between 1 and 1.5 timeouts to
        arrive, and the request path does no clock work at all. Idle keep-alive connections
        are not waiting for a head (that is --idle-timeout's business); nor is a client whose
        next head may be held up by the body we are still sending it.
        """
        self._timer = None
        transport = self.transport
        if transport is None or self._dead:
            return
        waiting = (self._in_message or self._begun == 0) and not (
            self._pending or self._body is not None
        )
        if waiting and self._tick_mark == self._begun:
            self._ticks += 1
        else:
            self._ticks = 0
        self._tick_mark = self._begun
        if waiting and self._ticks >= 2:
            self._fail(408)
            self._serve()
            return
        self._timer = transport.call_later(self._timeout / 2, self._tick)

    # -- answering ----------------------------------------------------------------------------
    def _serve(self) -> None:
        """Answer queued requests in order until one leaves a body in flight."""
        if self._serving:
            return
        self._serving = True
        pending = self._pending
        try:
            while pending and self._body is None:
                transport = self.transport
                if transport is None:
                    return
                request = pending.popleft()
                self._respond(transport, request)
                if not request.keep_alive:
                    pending.clear()
                    transport.close()
                    return
        finally:
            self._serving = False
        transport = self.transport
        if transport is None or pending or self._body is not None:
            return
        if self._eof:
            transport.close()
        elif self._held and not self._dead:
            self._held = False
            transport.resume_reading()

    def _body_done(self, completed: bool) -> None:
        body, self._body = self._body, None
        if body is not None:
            if not completed:
                self.site.files.drop(body)  # truncated, or the client left: look again next time
            body.release()
        if completed and not self._serving:
            self._serve()

    def _respond(
        self, transport: Transport, request: Request, entry: OpenFile | None = None
    ) -> None:
        """Answer ``request``; ``entry``: its file, already found in the cache."""
        if entry is not None:
            self._file(transport, request, entry)
            return
        if request.status:
            self._error(transport, request, request.status)
            return
        if request.method not in _GET_HEAD:
            self._error(transport, request, 405, f"Allow: {responses.ALLOW}\r\n")
            return
        target = request.target
        if target.startswith(b"/"):
            path, _, query = target.partition(b"?")
            if b"#" in path:
                path = path.partition(b"#")[0]
        else:
            try:
                url = httptools.parse_url(target)  # absolute-form: http://host/path
            except httptools.HttpParserInvalidURLError:
                self._error(transport, request, 400)
                return
            path, query = url.path or b"/", url.query or b""
        files = self.site.files
        entry = files.get(path, monotonic())
        if entry is None:
            entry = self._open(transport, request, path, query)
            if entry is None:
                return  # answered already (error, redirect, listing)
            files.put(path, entry)
        self._file(transport, request, entry)
        if not entry.cached:
            entry.discard()  # not kept: closed now, or by the body's release

    def _open(
        self, transport: Transport, request: Request, path: bytes, query: bytes
    ) -> OpenFile | None:
        """Resolve ``path`` to a regular file under the root, or answer the request here."""
        segments = split_target(path)
        if segments is None:
            self._error(transport, request, 404)
            return None
        root = self.site.root
        try:
            fd, st = root.open(segments)
            name = segments[-1] if segments else ""
            if stat.S_ISDIR(st.st_mode):
                os.close(fd)
                if not path.endswith(b"/"):
                    # Relative links in a page only work from "dir/": redirect, as servers do.
                    location = path.decode("latin-1") + "/"
                    if query:
                        location += "?" + query.decode("latin-1")
                    self._error(transport, request, 301, f"Location: {location}\r\n")
                    return None
                try:
                    fd, st = root.open([*segments, "index.html"])
                except HttpError as err:
                    if err.status == 404 and self._config.list_dirs:
                        self._listing(transport, request, segments)
                        return None
                    raise
                name = "index.html"
                if stat.S_ISDIR(st.st_mode):
                    os.close(fd)
                    raise HttpError(404)
        except HttpError as err:
            self._error(transport, request, err.status)
            return None
        mtime = int(st.st_mtime)
        return OpenFile(fd, st, name, self.site.last_modified(mtime), monotonic())

    def _listing(self, transport: Transport, request: Request, segments: list[str]) -> None:
        dir_path = os.path.join(self.site.root.path, *segments)
        try:
            with os.scandir(dir_path) as entries:
                names = sorted((e.name, e.is_dir()) for e in entries)
        except OSError:
            self._error(transport, request, 404)
            return
        body = responses.listing("/" + "".join(s + "/" for s in segments), names)
        fields = f"Content-Type: text/html; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
        head = responses.head(
            200, self.site.dates.now(), fields, request.keep_alive, request.http10
        )
        transport.write(head if request.method == b"HEAD" else head + body)

    def _file(self, transport: Transport, request: Request, entry: OpenFile) -> None:
        fields = request.fields
        date = self.site.dates.now()
        if fields is _NO_FIELDS and request.keep_alive and not request.http10:
            # The common case, kept short: the whole file, keep-alive, HTTP/1.1, a head built
            # once per file and second.
            if entry.head_date is not date:
                _plain_head(entry, date)
            if request.method == b"HEAD" or not entry.size:
                transport.write(entry.head)
                return
            if entry.body is not None:
                transport.write(entry.response)
                return
            self._body = entry.acquire()
            transport.sendfile(entry.fd, 0, entry.size, self._body_done, entry.head)
            return
        size = entry.size
        if (fields[_INM] is not None or fields[_IMS] is not None) and not_modified(
            fields[_INM], fields[_IMS], entry.etag, entry.mtime
        ):
            validators = f"Last-Modified: {entry.last_modified}\r\nETag: {entry.etag}\r\n"
            transport.write(
                responses.head(304, date, validators, request.keep_alive, request.http10)
            )
            return
        status, start, length, content_range = 200, 0, size, ""
        if fields[_RANGE] is not None and if_range_allows(
            fields[_IF_RANGE], entry.etag, entry.mtime
        ):
            selected = parse_range(fields[_RANGE], size)
            if selected is UNSATISFIABLE:
                self._error(transport, request, 416, f"Content-Range: bytes */{size}\r\n")
                return
            if selected is not None:
                status, (start, last) = 206, selected
                length = last - start + 1
                content_range = f"Content-Range: bytes {start}-{last}/{size}\r\n"
        head = responses.head(
            status,
            date,
            f"{entry.fields}Content-Length: {length}\r\n{content_range}",
            request.keep_alive,
            request.http10,
        )
        if request.method == b"HEAD" or length == 0:
            transport.write(head)
            return
        if entry.body is not None:
            transport.write(head + entry.body[start : start + length])
            return
        self._body = entry.acquire()
        transport.sendfile(entry.fd, start, length, self._body_done, head)

    def _error(self, transport: Transport, request: Request, status: int, extra: str = "") -> None:
        keep_alive = request.keep_alive and status not in _CLOSING_STATUSES
        if status == 503:
            extra += "Retry-After: 1\r\n"
        transport.write(
            responses.simple(
                status,
                self.site.dates.now(),
                keep_alive,
                request.http10,
                with_body=request.method != b"HEAD",
                extra=extra,
            )
        )
        if not keep_alive:
            request.keep_alive = False  # _serve closes after this answer


def _plain_head(entry: OpenFile, date: str) -> None:
    """Set ``entry``'s 200 keep-alive HTTP/1.1 head for ``date`` (and its whole response, when
    the body is in memory): built once per file and second, not per request."""
    fields = f"{entry.fields}Content-Length: {entry.size}\r\n"
    entry.head = responses.head(200, date, fields, True, False)
    entry.head_date = date
    if entry.body is not None:
        # The body lives on as a view into the response: one copy of it in memory, not two.
        response = entry.response = entry.head + entry.body
        entry.body = memoryview(response)[len(entry.head) :]


def _too_long(content_length: bytes, limit: int) -> bool:
    text = content_length.strip()
    return text.isdigit() and (len(text) > 18 or int(text) > limit)
