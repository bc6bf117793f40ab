"""The server's read buffer: page-aligned, because where it starts changes what a copy costs.

The kernel copies received bytes into this buffer (``copy_to_user``, a ``rep movsb`` on x86-64)
from socket buffers that mostly start on a page boundary (a UNIX stream message of more than
~3.7 KiB sits in page fragments; TCP fills pages too). When the destination starts a few bytes
*after* the source modulo 4 KiB, every load of the copy waits on an earlier store to an address
with the same low 12 bits (4K aliasing) and the copy runs several times slower.

``bytearray(256 KiB)`` is exactly that case: glibc serves it with ``mmap`` and puts the data 16
bytes into the first page. Measured here (UNIX 4 KiB echo, 32 connections, C load client):
kernel time per message 8.1 µs at page offset 16 against 5.8 µs at offsets 0, 256 and 2048,
``_copy_to_iter`` 10% of the server's samples against 1.7% (perf record). A smaller bytearray
from the heap lands at an arbitrary offset, which is why a 64 KiB buffer looked faster.
"""

from __future__ import annotations

import mmap

# What a connection or datagram endpoint reads into: the server passes a page-aligned mmap, a
# test may pass a bytearray (both are writable buffers that recv_into takes as they are).
ReadBuffer = bytearray | mmap.mmap


def page_aligned_buffer(size: int) -> mmap.mmap:
    """A zeroed, writable buffer of ``size`` bytes that starts on a page boundary.

    Private to this process (``MAP_PRIVATE``): a forked worker gets its own copy on write,
    never a buffer shared with its siblings.
    """
    if size < 1:
        raise ValueError(f"buffer size must be >= 1, not {size}")
    return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
