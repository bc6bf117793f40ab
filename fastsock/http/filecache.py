"""Open files and their response metadata, reused across requests (nginx's open_file_cache).

For small files the cost of a request is mostly per-request work, not bytes: resolving the path
(open, readlink, fstat, close) and formatting ETag, Last-Modified and the head took about half of
a 1 KiB request's server time here. A hit costs a dict lookup and one ``lseek`` instead.

Freshness: every hit checks the file's size (``lseek(fd, 0, SEEK_END)``, a fifth of an
``fstat``'s cost here: os.fstat builds a 20-field result): a file that shrank or grew is opened
again, so Content-Length never disagrees with the bytes we can send. Everything else -- content
rewritten at the same size, a file replaced by a rename or deleted, links changed on the way --
is seen once the entry is ``valid_s`` old, when the path is resolved again from scratch. That is
nginx's ``open_file_cache_valid`` (60 s by default there), and the reason for a short default.
A body that fails (truncated file, client gone) also drops its entry.

Small files (up to ``memory_file_max`` bytes, ``memory_bytes`` in all) are also read into memory
when they enter the cache, so a hit answers with one ``send`` of head and body from one bytes
object instead of a send of the head and a ``sendfile`` (two syscalls, and a Python call each):
that was most of what was left of a 1 KiB request's server time. Such a body follows the same
freshness rules as the descriptor it was read from (a size change is seen on the next hit,
anything else within ``valid_s``): it is dropped with its entry.

Descriptors are reference-counted: a body being sent holds its file, and an entry evicted
meanwhile closes its descriptor only when the last body is done. Open descriptors are bounded
by ``max_entries`` plus one per connection.
"""

from __future__ import annotations

import os

from fastsock.http import responses
from fastsock.http.conditional import make_etag


class OpenFile:
    """A regular file opened for serving, with what its responses say about it."""

    __slots__ = (
        "key",
        "fd",
        "size",
        "mtime",
        "etag",
        "last_modified",
        "fields",
        "refs",
        "cached",
        "opened_at",
        "head",
        "head_date",
        "body",
        "response",
    )

    def __init__(
        self, fd: int, st: os.stat_result, name: str, last_modified: str, now: float
    ) -> None:
        self.key = b""  # set by FileCache.put
        self.fd = fd
        self.size = st.st_size
        self.mtime = int(st.st_mtime)
        self.etag = make_etag(st.st_size, st.st_mtime_ns)
        self.last_modified = last_modified
        # The fields every 200/206 answer for this file carries (Content-Length comes apart).
        self.fields = (
            f"Content-Type: {responses.content_type(name)}\r\n"
            f"Last-Modified: {last_modified}\r\nETag: {self.etag}\r\nAccept-Ranges: bytes\r\n"
        )
        self.refs = 0  # bodies in flight
        self.cached = False  # held by the cache (which then closes it on eviction)
        self.opened_at = now
        # The handler's cached "200, keep-alive, HTTP/1.1" head and the Date it carries.
        self.head = b""
        self.head_date: str | None = None
        # The whole file, when the cache keeps it in memory (see load()), and that head + it
        # (the handler then makes body a view into response, so it is held once).
        self.body: bytes | memoryview | None = None
        self.response = b""

    def load(self) -> bool:
        """Read the whole file into :attr:`body`; False if it is not all there any more."""
        try:
            data = os.pread(self.fd, self.size, 0)
        except OSError:
            return False
        if len(data) != self.size:
            return False  # it changed since fstat: the next hit's size check drops the entry
        self.body = data
        return True

    def acquire(self) -> OpenFile:
        self.refs += 1
        return self

    def release(self) -> None:
        """A body is done with the file; close it if nobody else holds it."""
        self.refs -= 1
        if self.refs <= 0 and not self.cached:
            self._close()

    def discard(self) -> None:
        """Close unless a body holds it (then the last release does)."""
        self.cached = False
        self.body = None  # sends still queued hold their own reference
        self.response = b""
        if self.refs <= 0:
            self._close()

    def _close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class FileCache:
    """Request path -> :class:`OpenFile`, bounded, checked on every hit (see module doc)."""

    def __init__(
        self,
        max_entries: int,
        valid_s: float,
        memory_bytes: int = 0,
        memory_file_max: int = 0,
    ) -> None:
        self.max_entries = max_entries
        self.valid_s = valid_s
        self.memory_bytes = memory_bytes  # bound on the bodies held in memory, all together
        self.memory_file_max = memory_file_max  # larger files are only kept open
        self.memory_used = 0
        self._entries: dict[bytes, OpenFile] = {}
        self.misses = 0

    def get(self, key: bytes, now: float) -> OpenFile | None:
        """The fresh entry for ``key``, or None (then open the file and :meth:`put` it)."""
        entry = self._entries.get(key)
        if entry is not None:
            if now - entry.opened_at <= self.valid_s:
                try:
                    if os.lseek(entry.fd, 0, os.SEEK_END) == entry.size:
                        return entry
                except OSError:
                    pass
            del self._entries[key]
            self._forget(entry)
        self.misses += 1
        return None

    def drop(self, entry: OpenFile) -> None:
        """Forget ``entry`` (its body failed: the file may have changed)."""
        if self._entries.get(entry.key) is entry:
            del self._entries[entry.key]
            self._forget(entry)

    def put(self, key: bytes, entry: OpenFile) -> None:
        if self.max_entries <= 0:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._forget(old)
        while len(self._entries) >= self.max_entries:
            # Evict the oldest insertion: cheap, and good enough for a hot set that fits.
            oldest = next(iter(self._entries))
            self._forget(self._entries.pop(oldest))
        entry.cached = True
        entry.key = key
        self._entries[key] = entry
        size = entry.size
        if (
            0 < size <= self.memory_file_max
            and self.memory_used + size <= self.memory_bytes
            and entry.load()
        ):
            self.memory_used += size

    def _forget(self, entry: OpenFile) -> None:
        """An entry leaves the cache: give back its memory, close it unless a body holds it."""
        if entry.body is not None:
            self.memory_used -= len(entry.body)
        entry.discard()

    def clear(self) -> None:
        for entry in self._entries.values():
            self._forget(entry)
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
