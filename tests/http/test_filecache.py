"""The open-file cache: fresh on every hit, bounded, and it never closes a file in use."""

from __future__ import annotations

import os

from fastsock.http.filecache import FileCache, OpenFile


def opened(path, now: float = 0.0) -> OpenFile:
    fd = os.open(path, os.O_RDONLY)
    return OpenFile(fd, os.fstat(fd), os.path.basename(path), "date", now)


def cached(
    tmp_path, content: bytes = b"x", files: int = 8, valid_s: float = 60, now: float = 0.0
) -> tuple[FileCache, OpenFile]:
    """A cache of ``files`` open files holding one: ``/a``, opened at ``now``."""
    (tmp_path / "a").write_bytes(content)
    cache = FileCache(files, valid_s=valid_s)
    entry = opened(tmp_path / "a", now)
    cache.put(b"/a", entry)
    return cache, entry


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_hit_returns_the_same_open_file(tmp_path):
    cache, entry = cached(tmp_path, b"x" * 10)
    assert cache.get(b"/a", 1.0) is entry
    assert cache.get(b"/a", 2.0) is entry
    assert cache.misses == 0


def test_a_file_that_changed_size_is_a_miss(tmp_path):
    path = tmp_path / "a"
    cache = FileCache(8, valid_s=60)
    for change in (
        lambda: path.write_bytes(b"longer content"),
        lambda: os.truncate(path, 3),
        lambda: path.open("ab").write(b"more"),
    ):
        path.write_bytes(b"x" * 10)
        entry = opened(path)
        cache.put(b"/a", entry)
        change()
        assert cache.get(b"/a", 1.0) is None
        assert entry.fd == -1, "a dropped entry must close its file"


def test_other_changes_are_seen_once_the_entry_expires(tmp_path):
    cache, entry = cached(tmp_path, b"x" * 10, valid_s=1.0, now=10.0)
    (tmp_path / "new").write_bytes(b"y" * 10)  # replaced by a rename, same size
    os.replace(tmp_path / "new", tmp_path / "a")
    assert cache.get(b"/a", 10.5) is entry  # within valid_s: the old file, consistently
    assert cache.get(b"/a", 11.5) is None
    assert entry.fd == -1


def test_drop_forgets_the_entry_and_closes_when_idle(tmp_path):
    cache, entry = cached(tmp_path)
    cache.drop(entry)
    assert cache.get(b"/a", 1.0) is None and entry.fd == -1


def test_entries_expire_after_valid_s(tmp_path):
    cache, _ = cached(tmp_path, valid_s=1.0, now=10.0)
    assert cache.get(b"/a", 10.5) is not None
    assert cache.get(b"/a", 11.5) is None


def test_eviction_bounds_open_files_but_spares_files_in_use(tmp_path):
    cache = FileCache(2, valid_s=60)
    entries = []
    for name in "abc":
        (tmp_path / name).write_bytes(name.encode())
        entries.append(opened(tmp_path / name))
    busy = entries[0].acquire()  # a body in flight holds "a"
    busy_fd = busy.fd
    for name, entry in zip("abc", entries, strict=True):
        cache.put(name.encode(), entry)
    assert len(cache) == 2
    assert is_open(busy_fd), "evicted while a body was using it"
    busy.release()
    assert busy.fd == -1 and not is_open(busy_fd)
    cache.clear()
    assert all(e.fd == -1 for e in entries)


def test_uncached_files_close_on_last_release(tmp_path):
    (tmp_path / "a").write_bytes(b"x")
    entry = opened(tmp_path / "a")
    entry.acquire()
    entry.discard()  # the handler is done with it; the body is not
    assert entry.fd != -1
    entry.release()
    assert entry.fd == -1


def test_a_zero_sized_cache_keeps_nothing(tmp_path):
    cache, entry = cached(tmp_path, files=0)
    assert not entry.cached and len(cache) == 0
    entry.discard()


# -- small files kept in memory -------------------------------------------------------------------
def test_small_files_are_read_into_memory_within_the_bounds(tmp_path):
    cache = FileCache(8, valid_s=60, memory_bytes=10, memory_file_max=6)
    sizes = {"a": 4, "b": 6, "big": 7, "c": 4, "empty": 0}
    entries = {}
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(name[0].encode() * size)
        entries[name] = opened(tmp_path / name)
        cache.put(name.encode(), entries[name])
    assert entries["a"].body == b"aaaa" and entries["b"].body == b"bbbbbb"
    assert entries["big"].body is None, "over memory_file_max: only kept open"
    assert entries["c"].body is None, "over memory_bytes in all: only kept open"
    assert entries["empty"].body is None
    assert cache.memory_used == 10
    cache.drop(entries["a"])
    assert entries["a"].body is None and cache.memory_used == 6
    cache.put(b"c2", opened(tmp_path / "c"))  # room again
    assert cache.memory_used == 10
    cache.clear()
    assert cache.memory_used == 0


def test_a_body_in_memory_goes_with_its_entry(tmp_path):
    path = tmp_path / "a"
    cache = FileCache(8, valid_s=1.0, memory_bytes=100, memory_file_max=100)
    path.write_bytes(b"x" * 10)
    entry = opened(path, now=10.0)
    cache.put(b"/a", entry)
    path.write_bytes(b"y" * 11)  # a size change: seen at the next hit
    assert cache.get(b"/a", 10.1) is None
    assert entry.body is None and cache.memory_used == 0
    entry = opened(path, now=10.0)
    cache.put(b"/a", entry)
    assert entry.body == b"y" * 11
    path.write_bytes(b"z" * 11)  # same size: seen once the entry expires, like the rest
    assert cache.get(b"/a", 10.5) is entry
    assert cache.get(b"/a", 11.5) is None and cache.memory_used == 0


def test_eviction_gives_memory_back(tmp_path):
    cache = FileCache(2, valid_s=60, memory_bytes=1000, memory_file_max=1000)
    for name in "abc":
        (tmp_path / name).write_bytes(name.encode() * 100)
        cache.put(name.encode(), opened(tmp_path / name))
    assert len(cache) == 2 and cache.memory_used == 200


def test_a_file_shorter_than_its_stat_stays_out_of_memory(tmp_path):
    path = tmp_path / "a"
    path.write_bytes(b"x" * 10)
    entry = opened(path)
    os.truncate(path, 5)  # changed between fstat and the read
    cache = FileCache(8, valid_s=60, memory_bytes=100, memory_file_max=100)
    cache.put(b"/a", entry)
    assert entry.body is None and cache.memory_used == 0
    assert cache.get(b"/a", 1.0) is None, "and the size check drops it at the next hit"
