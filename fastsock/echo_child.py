"""The echo peer of the IPC floor: read from one file descriptor, write it all back on another.

    python -m fastsock.echo_child READ_FD WRITE_FD [BUFFER_BYTES]

Started by :mod:`fastsock.floor` with the child's ends of a pipe pair or a socketpair passed
in (``pass_fds``). It is the cheapest echo a Python process can do -- blocking ``readv`` into
one preallocated buffer, ``write`` of a memoryview slice back, no event loop, nothing allocated
per message -- so what the floor measures is the channel and the two wake-ups, not a server.
Message sockets (seqpacket) keep boundaries: one read is one message and one write sends it
back whole, so the buffer must be at least the largest message. It exits 0 at end of file
(the parent closed its ends) or when the parent has gone (EPIPE, reset), 2 on bad arguments.

Imports only ``os`` and ``sys``: a fresh interpreter starts in a few tens of milliseconds and
runs no helper threads (numpy, which the load engine imports, would start some).
"""

from __future__ import annotations

import os
import sys

DEFAULT_BUFFER = 256 * 1024


def echo(read_fd: int, write_fd: int, size: int = DEFAULT_BUFFER) -> int:
    """Echo until end of file; returns the number of bytes echoed."""
    buf = bytearray(size)
    view = memoryview(buf)
    total = 0
    while True:
        try:
            n = os.readv(read_fd, [buf])
        except ConnectionResetError:
            return total
        if n == 0:
            return total
        sent = 0
        while sent < n:
            try:
                sent += os.write(write_fd, view[sent:n])
            except (BrokenPipeError, ConnectionResetError):
                return total
        total += n


def main(argv: list[str]) -> int:
    try:
        read_fd, write_fd = int(argv[0]), int(argv[1])
        size = int(argv[2]) if len(argv) > 2 else DEFAULT_BUFFER
        if size < 1 or len(argv) > 3:
            raise ValueError
    except (IndexError, ValueError):
        print(
            "usage: python -m fastsock.echo_child READ_FD WRITE_FD [BUFFER_BYTES]", file=sys.stderr
        )
        return 2
    try:
        echo(read_fd, write_fd, size)
    except OSError as err:
        print(f"fastsock echo child: {err.strerror or err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
