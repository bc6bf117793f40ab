"""Open files and their response metadata, reused across requests (nginx's open_file_cache).

For small files the cost of a request is mostly per-request work, not bytes: resolving the path
(open, readlink, fstat, close) and formatting ETag, Last-Modified and the head took about half of
a 1 KiB request's server time here. A hit costs one dict lookup and one ``fstat`` of the cached
descriptor instead.

Freshness: every hit ``fstat``\\ s the descriptor and drops the entry when size, mtime, inode or
link count changed -- so a file modified, truncated, deleted or replaced by a rename is never
served stale. What ``fstat`` cannot see (a symlink or directory renamed on the way to the file)
is seen once the entry is ``valid_s`` old: then the path is resolved again from scratch.

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
        "fd",
        "size",
        "mtime",
        "identity",
        "etag",
        "last_modified",
        "fields",
        "refs",
        "cached",
        "opened_at",
        "head",
        "head_date",
    )

    def __init__(
        self, fd: int, st: os.stat_result, name: str, last_modified: str, now: float
    ) -> None:
        self.fd = fd
        self.size = st.st_size
        self.mtime = int(st.st_mtime)
        self.identity = _identity(st)
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
        if self.refs <= 0:
            self._close()

    def _close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _identity(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_nlink)


class FileCache:
    """Request path -> :class:`OpenFile`, bounded, checked on every hit (see module doc)."""

    def __init__(self, max_entries: int, valid_s: float) -> None:
        self.max_entries = max_entries
        self.valid_s = valid_s
        self._entries: dict[bytes, OpenFile] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: bytes, now: float) -> OpenFile | None:
        """The fresh entry for ``key``, or None (then open the file and :meth:`put` it)."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        if now - entry.opened_at <= self.valid_s:
            try:
                if _identity(os.fstat(entry.fd)) == entry.identity:
                    self.hits += 1
                    return entry
            except OSError:
                pass
        del self._entries[key]
        entry.discard()
        self.misses += 1
        return None

    def put(self, key: bytes, entry: OpenFile) -> None:
        if self.max_entries <= 0:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            old.discard()
        while len(self._entries) >= self.max_entries:
            # Evict the oldest insertion: cheap, and good enough for a hot set that fits.
            oldest = next(iter(self._entries))
            self._entries.pop(oldest).discard()
        entry.cached = True
        self._entries[key] = entry

    def clear(self) -> None:
        for entry in self._entries.values():
            entry.discard()
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
