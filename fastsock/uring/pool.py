"""The io_uring engine's shared receive pool: one provided-buffer ring for every connection.

With a buffer per connection for the kernel to fill, receive memory grew with connections x
message size (542 MB at 8,000 x 64 KiB, issue #24; that path, ``--uring-pool off``, was removed
once the pool matched its speed, see docs/engines.md). Here RECVs carry
``IOSQE_BUFFER_SELECT`` and the kernel takes a buffer from this ring when data arrives; the
completion names the buffer (``cqe.flags >> 16``). A buffer is owned by exactly one party at a
time: the ring (free), the kernel (filling it), the connection whose completion named it (until
its handler returns, or, for a larger echo, until the SEND of it completes; a small echo is
copied to the connection's own 1 KiB buffer first), and then the ring again
(:meth:`BufferPool.put`). Receive memory is the pool plus 1 KiB per connection that has echoed a
small message, whatever the number of connections.

A RECV that finds the ring empty completes with ``-ENOBUFS`` (counted as ``enobufs`` in the
stats): the ring grows from the reserve (:data:`INITIAL_BUFFERS`, :data:`GROW_BY`) and the RECV
is re-armed at once; once the whole pool is in the ring, the connection waits on the server's
starved list and gets its RECV back when a buffer returns.

Layout (``include/uapi/linux/io_uring.h``): the ring is ``entries`` x 16-byte
``struct io_uring_buf`` (addr, len, bid, resv) in page-aligned memory we own, registered with
``IORING_REGISTER_PBUF_RING`` (5.19); its u16 tail overlaps entry 0's ``resv`` -- so an entry is
written as its first 14 bytes only. We publish the tail with a plain store (x86-64 keeps store
order, see :mod:`fastsock.uring.ring`).
"""

from __future__ import annotations

import ctypes
import mmap
import os
import re
import struct
from dataclasses import dataclass

from fastsock.units import SizeError, parse_size
from fastsock.uring import abi
from fastsock.uring.ring import Ring, UringUnavailable

POOL_GROUP = 0  # the buffer group id of the pool (one pool per ring)
# Buffers given to the kernel at start; the rest wait in a reserve and join on ENOBUFS, GROW_BY
# at a time. The ring is FIFO, so every buffer in it is used in turn: with all 64 x 256 KiB in
# circulation, 8 connections x 1 MiB ran at 0.81x (0.72-0.88) the per-connection buffers (the
# kernel's copies into and out of 16 MiB of cold memory); with 8 buffers, level with them. So
# the pool circulates only as many buffers as the load has needed so far (and its untouched
# pages cost no RSS).
INITIAL_BUFFERS = 16
GROW_BY = 8
DEFAULT_POOL = "16M"
MAX_BUFFER = 1 << 30  # a RECV's length is a u32; a GiB is more than any sane buffer
_ENTRY = struct.Struct("<QIH")  # addr, len, bid: 14 bytes, never the tail after them
_COUNT_X_SIZE = re.compile(r"^\s*(\d+)\s*[xX*]\s*(\S+)\s*$")


class PoolError(ValueError):
    """A bad ``--uring-pool``; ``str()`` is a one-line message."""


@dataclass(frozen=True)
class PoolSpec:
    """``count`` buffers of ``size`` bytes each."""

    count: int
    size: int

    @property
    def total(self) -> int:
        return self.count * self.size


def parse_pool(text: str, read_size: int) -> PoolSpec:
    """``--uring-pool``: a total such as ``16M`` (cut into ``--read-size`` buffers), or
    ``COUNTxSIZE`` such as ``256x64K``. Raises :class:`PoolError` with a one-line reason."""
    if text.strip().lower() in ("off", "none"):
        raise PoolError(
            f"--uring-pool {text.strip()}: the per-connection buffers were removed (the pool "
            "is the io_uring engine's one data path); give a size such as 16M or COUNTxSIZE"
        )
    match = _COUNT_X_SIZE.match(text)
    try:
        if match:
            count, size = int(match.group(1)), parse_size(match.group(2))
        else:
            total, size = parse_size(text), read_size
            count = total // size if size else 0
            if count < 1:
                raise PoolError(
                    f"--uring-pool {text} is smaller than one --read-size buffer ({read_size} "
                    "bytes): give a larger pool, a smaller --read-size, or COUNTxSIZE"
                )
    except SizeError as err:
        raise PoolError(f"--uring-pool {text!r}: {err}; or COUNTxSIZE like 256x64K") from None
    if not 1 <= count <= abi.BUF_RING_MAX_ENTRIES:
        raise PoolError(
            f"--uring-pool holds 1 to {abi.BUF_RING_MAX_ENTRIES} buffers (the kernel's limit), "
            f"not {count}"
        )
    if not 1 <= size <= MAX_BUFFER:
        raise PoolError(f"--uring-pool buffers are 1 byte to 1 GiB, not {size} bytes")
    return PoolSpec(count, size)


def _ring_entries(count: int) -> int:
    """The ring's size: a power of two that holds every buffer (the kernel requires it)."""
    return 1 << max(0, (count - 1).bit_length())


class BufferPool:
    """``spec.count`` buffers of ``spec.size`` bytes in one page-aligned mapping, provided to
    ``ring`` as buffer group :data:`POOL_GROUP`. :data:`INITIAL_BUFFERS` start in the ring,
    the others in :attr:`reserve`."""

    # Slots: the completion loop reads and writes ``tail`` once per message.
    __slots__ = (
        "_entry", "_mem_c", "_ring_c", "_tail_u16", "base", "count", "entries", "mask", "mem",
        "reserve", "ring_map", "sending", "size", "tail", "view",
    )  # fmt: skip

    def __init__(self, ring: Ring, spec: PoolSpec) -> None:
        self.count = spec.count
        self.size = spec.size
        self.entries = _ring_entries(spec.count)
        self.mask = self.entries - 1
        # Anonymous mappings: page-aligned (the kernel requires it of the ring; the buffers
        # copy faster so, see fastsock/buffer.py) and only the pages the kernel writes count
        # in RSS.
        self.mem = mmap.mmap(-1, spec.total, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.view = memoryview(self.mem)
        self._mem_c = (ctypes.c_char * spec.total).from_buffer(self.mem)
        self.base = ctypes.addressof(self._mem_c)
        ring_bytes = max(self.entries * abi.BUF_ENTRY_SIZE, mmap.PAGESIZE)
        self.ring_map = mmap.mmap(-1, ring_bytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self._ring_c = (ctypes.c_char * ring_bytes).from_buffer(self.ring_map)
        self._tail_u16 = memoryview(self.ring_map).cast("H")
        reg = abi.BufReg(
            ring_addr=ctypes.addressof(self._ring_c), ring_entries=self.entries, bgid=POOL_GROUP
        )
        ret = ring._syscall(
            abi.SYS_IO_URING_REGISTER,
            ring.fd,
            abi.IORING_REGISTER_PBUF_RING,
            ctypes.addressof(reg),
            1,
            0,
            0,
        )
        if ret < 0:
            err = ctypes.get_errno()
            self.close()
            raise UringUnavailable(
                "--engine uring is unavailable: the kernel refused a provided-buffer ring "
                f"(IORING_REGISTER_PBUF_RING, Linux >= 5.19): {os.strerror(err)}; "
                "use --engine epoll"
            )
        # What put() writes for each buffer: its 14-byte entry, built once.
        self._entry = [
            _ENTRY.pack(self.base + bid * self.size, self.size, bid) for bid in range(self.count)
        ]
        self.tail = 0
        # Buffers in echo SENDs whose completions are posted (each comes back with a wake-up).
        self.sending = 0
        initial = min(self.count, INITIAL_BUFFERS)
        self.reserve = list(range(self.count - 1, initial - 1, -1))  # pop() -> lowest id
        for bid in range(initial):
            self.put(bid)

    def addr(self, bid: int) -> int:
        return self.base + bid * self.size

    def put(self, bid: int) -> None:
        """Give buffer ``bid`` back to the kernel (once per completion that named it)."""
        off = (self.tail & self.mask) * abi.BUF_ENTRY_SIZE
        self.ring_map[off : off + abi.BUF_ENTRY_WRITE] = self._entry[bid]
        self.tail = (self.tail + 1) & 0xFFFF
        self._tail_u16[abi.BUF_RING_TAIL // 2] = self.tail  # publish: x86-64 keeps store order

    def grow(self, n: int = GROW_BY) -> int:
        """Move up to ``n`` buffers from the reserve into the ring; returns how many."""
        moved = 0
        while moved < n and self.reserve:
            self.put(self.reserve.pop())
            moved += 1
        return moved

    def close(self) -> None:
        """Unmap (after the ring is closed: the kernel may write into a buffer until then)."""
        if self.mem.closed:
            return
        self.view.release()
        self._tail_u16.release()
        del self._mem_c, self._ring_c
        self.mem.close()
        self.ring_map.close()
