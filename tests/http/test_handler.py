"""The http handler without sockets: fed bytes, it answers through a recording transport."""

from __future__ import annotations

import heapq
import io
import os
from pathlib import Path

import pytest

from fastsock.handlers.http import HttpHandler, Site
from fastsock.http.config import HttpConfig
from tests.http.conftest import _SharedFile


class Timer:
    def __init__(self, when: float, callback) -> None:
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: Timer) -> bool:
        return self.when < other.when


class FakeTransport:
    """Records the byte stream a client would receive; file bodies are read from the file.

    ``hold_bodies``: keep file bodies pending until :meth:`finish_bodies` (a slow client).
    """

    def __init__(self, hold_bodies: bool = False) -> None:
        self.out = bytearray()
        self.closed = False
        self.paused = False
        self.pause_calls = 0
        self.now = 100.0
        self.timers: list[Timer] = []
        self.hold_bodies = hold_bodies
        self.held: list[tuple[int, int, int, object]] = []

    def write(self, data) -> None:
        assert not self.closed, "write after close"
        self.out += bytes(data)

    write_more = write

    def sendfile(self, fd: int, offset: int, count: int, on_done=None, head=b"") -> None:
        assert not self.closed, "sendfile after close"
        self.out += bytes(head)
        if self.hold_bodies:
            self.held.append((fd, offset, count, on_done))
            return
        self.out += os.pread(fd, count, offset)
        if on_done is not None:
            on_done(True)

    def finish_bodies(self, completed: bool = True) -> None:
        held, self.held = self.held, []
        for fd, offset, count, on_done in held:
            if completed:
                self.out += os.pread(fd, count, offset)
            on_done(completed)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.paused = True
        self.pause_calls += 1

    def resume_reading(self) -> None:
        self.paused = False

    def call_later(self, delay: float, callback) -> Timer:
        timer = Timer(self.now + delay, callback)
        heapq.heappush(self.timers, timer)
        return timer

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while self.timers and self.timers[0].when <= end:
            timer = heapq.heappop(self.timers)
            self.now = timer.when  # callbacks see the time they were due at, like a real loop
            if not timer.cancelled:
                timer.callback()
        self.now = end

    def responses(self, methods: list[str] | None = None):
        """Parse everything sent so far as consecutive responses: [(response, body)]."""
        stream = _SharedFile(io.BufferedReader(io.BytesIO(bytes(self.out))))
        found = []
        for method in methods or ["GET"] * 1000:
            resp = __import__("http.client").client.HTTPResponse(stream, method=method)
            try:
                resp.begin()
            except Exception:
                break
            found.append((resp, resp.read()))
        return found


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "a.txt").write_bytes(b"alpha\n")
    (tmp_path / "b.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "index.html").write_text("<p>index</p>")
    (tmp_path / "plain_dir").mkdir()
    (tmp_path / "plain_dir" / "x&y.txt").write_text("x")
    return tmp_path


def connect(root: Path, transport: FakeTransport | None = None, **config) -> tuple:
    if transport is not None and transport.hold_bodies:
        # Bodies only wait in the transport when sent from the file: keep none in memory.
        config.setdefault("memory_cache", 0)
    handler = HttpHandler(Site(HttpConfig(root=str(root), **config)))
    transport = transport or FakeTransport()
    handler.connection_made(transport)
    return handler, transport


def feed(handler: HttpHandler, data: bytes) -> None:
    # Through one reused buffer, like the connection: the handler must copy what it keeps.
    buf = bytearray(data)
    handler.data_received(memoryview(buf))
    buf[:] = b"\xff" * len(buf)


def get(path: str, *headers: str, method: str = "GET", version: str = "1.1") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: test", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_pipelined_requests_are_answered_in_order(root):
    handler, t = connect(root)
    feed(handler, get("/a.txt") + get("/b.bin") + get("/missing") + get("/a.txt"))
    got = t.responses()
    assert [r.status for r, _ in got] == [200, 200, 404, 200]
    assert got[0][1] == b"alpha\n" and got[1][1] == (root / "b.bin").read_bytes()
    assert got[3][1] == b"alpha\n"
    assert not t.closed


def test_a_request_split_into_single_bytes_is_parsed(root):
    handler, t = connect(root)
    for byte in get("/a.txt", "Range: bytes=1-3"):
        feed(handler, bytes([byte]))
    ((resp, body),) = t.responses()
    assert resp.status == 206 and body == b"lph"


def test_next_answer_waits_for_the_body_in_flight(root):
    handler, t = connect(root, FakeTransport(hold_bodies=True))
    feed(handler, get("/a.txt") + get("/b.bin"))
    assert len(t.held) == 1, "the second body must wait for the first"
    t.finish_bodies()
    assert len(t.held) == 1
    t.finish_bodies()
    assert [r.status for r, _ in t.responses()] == [200, 200]


def test_a_deep_pipeline_pauses_reading_until_answered(root):
    handler, t = connect(root, FakeTransport(hold_bodies=True), max_pipeline=4)
    feed(handler, get("/a.txt") * 10)
    assert t.paused
    for _ in range(10):
        t.finish_bodies()
    assert not t.paused
    assert [r.status for r, _ in t.responses()] == [200] * 10


def test_a_dropped_body_closes_its_file_and_answers_nothing_more(root):
    handler, t = connect(root, FakeTransport(hold_bodies=True), open_files=0)
    feed(handler, get("/a.txt") + get("/a.txt"))
    fd = t.held[0][0]
    t.closed = True  # the connection died with the body queued
    t.finish_bodies(completed=False)
    handler.connection_lost()
    with pytest.raises(OSError):
        os.fstat(fd)
    assert t.held == []


def test_head_has_the_length_but_no_body(root):
    handler, t = connect(root)
    feed(handler, get("/b.bin", method="HEAD") + get("/a.txt"))
    (head, head_body), (resp, body) = t.responses(["HEAD", "GET"])
    assert head.status == 200 and head.getheader("Content-Length") == "1024"
    assert head_body == b"" and body == b"alpha\n"


def test_http10_closes_unless_keep_alive_is_asked(root):
    handler, t = connect(root)
    feed(handler, get("/a.txt", version="1.0"))
    ((resp, body),) = t.responses()
    assert body == b"alpha\n" and resp.getheader("Connection") == "close" and t.closed
    handler, t = connect(root)
    feed(handler, get("/a.txt", "Connection: keep-alive", version="1.0"))
    ((resp, _),) = t.responses()
    assert resp.getheader("Connection") == "keep-alive" and not t.closed


def test_connection_close_is_honoured_and_later_requests_ignored(root):
    handler, t = connect(root)
    feed(handler, get("/a.txt", "Connection: close") + get("/b.bin"))
    assert [r.status for r, _ in t.responses()] == [200]
    assert t.closed


def test_conditional_and_range_answers(root):
    handler, t = connect(root)
    feed(handler, get("/b.bin"))
    ((first, _),) = t.responses()
    etag, modified = first.getheader("ETag"), first.getheader("Last-Modified")
    t.out.clear()
    feed(
        handler,
        get("/b.bin", f"If-None-Match: {etag}")
        + get("/b.bin", f"If-Modified-Since: {modified}")
        + get("/b.bin", 'If-None-Match: "nope"')
        + get("/b.bin", "Range: bytes=-4")
        + get("/b.bin", "Range: bytes=2000-")
        + get("/b.bin", "Range: bytes=0-1", 'If-Range: "stale"')
        + get("/b.bin", "Range: bytes=0-1", f"If-Range: {etag}"),
    )
    got = t.responses()
    assert [r.status for r, _ in got] == [304, 304, 200, 206, 416, 200, 206]
    assert got[0][1] == b"" and got[0][0].getheader("ETag") == etag
    assert got[3][1] == bytes([252, 253, 254, 255])
    assert got[3][0].getheader("Content-Range") == "bytes 1020-1023/1024"
    assert got[4][0].getheader("Content-Range") == "bytes */1024"
    assert len(got[5][1]) == 1024 and got[6][1] == b"\x00\x01"
    assert not t.closed


def test_directories_redirect_serve_index_or_404(root):
    handler, t = connect(root)
    feed(handler, get("/dir?x=1") + get("/dir/") + get("/plain_dir/") + get("/"))
    got = t.responses()
    assert [r.status for r, _ in got] == [301, 200, 404, 404]
    assert got[0][0].getheader("Location") == "/dir/?x=1"
    assert got[1][1] == b"<p>index</p>"
    assert got[1][0].getheader("Content-Type") == "text/html"


def test_list_dirs_escapes_names(root):
    handler, t = connect(root, list_dirs=True)
    feed(handler, get("/plain_dir/"))
    ((resp, body),) = t.responses()
    assert resp.status == 200 and resp.getheader("Content-Type").startswith("text/html")
    assert b"x&amp;y.txt" in body and b'href="x%26y.txt"' in body


@pytest.mark.parametrize(
    ("request_bytes", "status", "closes"),
    [
        (get("/a.txt", method="POST"), 405, False),
        (get("/a.txt", method="DELETE"), 405, False),
        (b"BREW /a.txt HTTP/1.1\r\n\r\n", 501, True),
        (b"GET /a.txt HTTP/1.1\r\nBad Header\r\n\r\n", 400, True),
        (b"GET /a\x01 HTTP/1.1\r\n\r\n", 400, True),
        (b"GET /a.txt HTTP/2.0\r\n\r\n", 505, True),
        (get("/a.txt", "Content-Length: 100000000"), 413, True),
        (get("/" + "a" * 9000), 414, True),
        (get("/a.txt", *[f"X-{i}: y" for i in range(101)]), 431, True),
        (get("/a.txt", "X-Big: " + "y" * 17000), 431, True),
        (get("/../a.txt"), 404, False),
        (get("/%2e%2e/a.txt"), 404, False),
    ],
)
def test_error_statuses(root, request_bytes, status, closes):
    handler, t = connect(root)
    feed(handler, request_bytes + get("/a.txt"))
    got = t.responses()
    assert got[0][0].status == status
    assert t.closed == closes
    if status == 405:
        assert got[0][0].getheader("Allow") == "GET, HEAD"
    if closes:
        assert len(got) == 1 and got[0][0].getheader("Connection") == "close"
    else:
        assert [r.status for r, _ in got] == [status, 200]


def test_a_chunked_body_over_the_limit_is_413(root):
    handler, t = connect(root, max_body=10)
    chunked = b"POST /a.txt HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    feed(handler, chunked + b"8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n")
    assert [r.status for r, _ in t.responses()] == [413] and t.closed


def test_a_small_body_is_read_and_dropped(root):
    handler, t = connect(root)
    feed(handler, b"GET /a.txt HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello" + get("/a.txt"))
    assert [r.status for r, _ in t.responses()] == [200, 200]


def test_a_head_that_never_ends_is_refused(root):
    handler, t = connect(root)
    feed(handler, b"GET /a.txt HTTP/1.1\r\nX-Slow: ")
    for _ in range(200):
        feed(handler, b"y" * 1000)
        if t.closed:
            break
    assert t.closed and [r.status for r, _ in t.responses()] == [431]


def test_upgrade_is_declined_and_parsing_goes_on(root):
    handler, t = connect(root)
    feed(handler, get("/a.txt", "Upgrade: websocket", "Connection: Upgrade") + get("/b.bin"))
    assert [r.status for r, _ in t.responses()] == [200, 200]


def test_connect_is_405_and_closes(root):
    handler, t = connect(root)
    feed(handler, b"CONNECT example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n" + get("/a.txt"))
    assert [r.status for r, _ in t.responses()] == [405] and t.closed


def test_absolute_form_targets_are_served(root):
    handler, t = connect(root)
    feed(handler, get("http://test/a.txt?q=1"))
    ((resp, body),) = t.responses()
    assert resp.status == 200 and body == b"alpha\n"


def test_header_timeout_answers_408_for_a_slow_head(root):
    handler, t = connect(root, header_timeout=5.0)
    feed(handler, get("/a.txt"))
    t.advance(1.0)
    feed(handler, b"GET /a.txt HTTP/1.1\r\nHost")
    t.advance(4.9)  # under the timeout: never a 408
    assert not t.closed
    t.advance(2.6)  # 1.5 timeouts at most
    assert t.closed and [r.status for r, _ in t.responses()] == [200, 408]


def test_header_timeout_spares_idle_keep_alive_connections(root):
    handler, t = connect(root, header_timeout=5.0)
    feed(handler, get("/a.txt"))
    t.advance(60.0)  # idle between requests: --idle-timeout's business, not a 408
    assert not t.closed
    feed(handler, get("/a.txt"))
    assert [r.status for r, _ in t.responses()] == [200, 200]


def test_header_timeout_applies_to_a_silent_new_connection(root):
    handler, t = connect(root, header_timeout=5.0)
    t.advance(4.9)
    assert not t.closed
    t.advance(2.6)
    assert t.closed and [r.status for r, _ in t.responses()] == [408]


def test_header_timeout_waits_while_we_are_still_sending(root):
    handler, t = connect(root, FakeTransport(hold_bodies=True), header_timeout=5.0)
    feed(handler, get("/a.txt") + b"GET /b.bin HTTP/1.1\r\n")
    t.advance(30.0)  # the client may well wait for our body before finishing its next head
    assert not t.closed
    t.finish_bodies()
    feed(handler, b"\r\n")
    t.finish_bodies()
    assert [r.status for r, _ in t.responses()] == [200, 200]


def test_eof_after_pipelined_requests_answers_them_then_closes(root):
    handler, t = connect(root, FakeTransport(hold_bodies=True))
    feed(handler, get("/a.txt") + get("/a.txt"))
    handler.eof_received()
    assert not t.closed
    t.finish_bodies()
    t.finish_bodies()
    assert t.closed and [r.status for r, _ in t.responses()] == [200, 200]


def test_content_types_come_from_the_extension(root):
    handler, t = connect(root)
    feed(handler, get("/a.txt") + get("/b.bin"))
    types = [r.getheader("Content-Type") for r, _ in t.responses()]
    assert types == ["text/plain", "application/octet-stream"]


class CountingTransport(FakeTransport):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.sendfiles = 0

    def write(self, data) -> None:
        self.writes += 1
        super().write(data)

    def sendfile(self, *args, **kwargs) -> None:
        self.sendfiles += 1
        super().sendfile(*args, **kwargs)


def test_a_small_cached_file_is_answered_in_one_write_and_follows_changes(root):
    handler, t = connect(root, CountingTransport())
    feed(handler, get("/b.bin") * 3)
    assert t.sendfiles == 0 and t.writes == 3, "read into memory when first opened"
    got = t.responses()
    assert [body for _, body in got] == [(root / "b.bin").read_bytes()] * 3
    assert got[0][0].getheader("Content-Length") == "1024"
    (root / "b.bin").write_bytes(b"new")  # another size: noticed at once
    t.out.clear()
    feed(handler, get("/b.bin"))
    assert t.responses()[0][1] == b"new"


def test_ranges_and_head_of_a_file_in_memory(root):
    handler, t = connect(root, CountingTransport())
    feed(handler, get("/b.bin"))  # now cached, in memory
    t.out.clear()
    feed(handler, get("/b.bin", "Range: bytes=10-19") + get("/b.bin", method="HEAD"))
    assert t.sendfiles == 0
    (partial, body), (head, head_body) = t.responses(["GET", "HEAD"])
    assert partial.status == 206 and body == bytes(range(10, 20))
    assert partial.getheader("Content-Range") == "bytes 10-19/1024"
    assert head.status == 200 and head_body == b"" and head.getheader("Content-Length") == "1024"


def test_files_are_not_kept_in_memory_when_memory_cache_is_0(root):
    handler, t = connect(root, CountingTransport(), memory_cache=0)
    feed(handler, get("/b.bin") * 2)
    assert t.sendfiles == 2
    assert handler.site.files.memory_used == 0


@pytest.mark.parametrize("field", ["Connection", "Proxy-Connection", "connection"])
def test_kept_alive_http10_gets_its_connection_field_from_a_file_in_memory(root, field):
    handler, t = connect(root)
    feed(handler, get("/a.txt"))  # cached and in memory: the short path would answer the next
    t.out.clear()
    feed(handler, get("/a.txt", f"{field}: keep-alive", version="1.0") + get("/a.txt"))
    (resp10, body10), (resp11, body11) = t.responses()
    assert body10 == body11 == b"alpha\n" and not t.closed
    assert resp10.getheader("Connection") == "keep-alive" and resp10.version == 11
    assert resp11.getheader("Connection") is None


def test_a_kept_alive_http20_request_is_505_even_for_a_file_in_memory(root):
    handler, t = connect(root)
    feed(handler, get("/a.txt"))
    t.out.clear()
    feed(handler, get("/a.txt", "Connection: keep-alive", version="2.0"))
    assert [r.status for r, _ in t.responses()] == [505] and t.closed


def test_a_body_in_memory_is_held_once_inside_its_response(root):
    handler, t = connect(root)
    feed(handler, get("/b.bin") * 2)
    entry = handler.site.files.get(b"/b.bin", 0.0)
    assert entry is not None and entry.body.obj is entry.response
    assert entry.response.endswith(entry.body) and len(entry.body) == 1024
    assert [body for _, body in t.responses()] == [(root / "b.bin").read_bytes()] * 2
