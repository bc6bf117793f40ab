"""The io_uring engine's registered files: each connection's socket sits in the ring's file
table while it is open, and leaves it when the connection is released (a slot still holding
the socket would keep it open after close())."""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

import pytest

from tests.conftest import uring_unavailable, wait_for

pytestmark = pytest.mark.skipif(uring_unavailable() is not None, reason=str(uring_unavailable()))


def _registered(pid: int) -> set[str]:
    """The sockets in the registered file table of the process's ring, as 'socket:[inode]'.

    The kernel lists the table in the ring's fdinfo only when it gets the ring's lock at once
    (io_uring/fdinfo.c: a trylock, to avoid a lock-order inversion); while the server is inside
    io_uring_enter the "UserFiles:" part is missing, so read again until it is there."""
    ring = None
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) == "anon_inode:[io_uring]":
                ring = Path(f"/proc/{pid}/fdinfo/{fd.name}")
                break
        except OSError:
            continue  # closed meanwhile
    if ring is None:
        raise AssertionError(f"no io_uring fd in /proc/{pid}/fd")
    deadline = time.monotonic() + 5.0
    while True:
        text = ring.read_text()
        if "UserFiles:" in text:
            table = text.split("UserFiles:", 1)[1].split("UserBufs:", 1)[0]
            return set(re.findall(r"^\s*\d+: (socket:\[\d+\])$", table, re.MULTILINE))
        if time.monotonic() > deadline:
            raise AssertionError(f"the ring's fdinfo never listed its files: {text[:300]!r}")
        time.sleep(0.01)


def _open_sockets(pid: int) -> set[str]:
    out = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:"):
            out.add(target)
    return out


@pytest.mark.timeout(30)
def test_connections_are_registered_files_and_leave_the_table(serve) -> None:
    server = serve("--port", "0", "--engine", "uring")
    ep = server.endpoint
    before = _open_sockets(server.pid)
    assert _registered(server.pid) == set()
    clients = [socket.create_connection((ep.host, ep.port), timeout=10) for _ in range(3)]
    try:
        for i, c in enumerate(clients):
            c.sendall(b"x%d" % i)
            assert c.recv(16) == b"x%d" % i
        table = _registered(server.pid)
        assert len(table) == 3
        # The registered sockets are the server's accepted ones, not stale entries.
        assert table <= _open_sockets(server.pid) - before
    finally:
        for c in clients:
            c.close()
    assert wait_for(lambda: not _registered(server.pid), 10), _registered(server.pid)
    # Emptied slots let close() release the sockets: only the listener and the like remain.
    assert wait_for(lambda: _open_sockets(server.pid) == before, 10), _open_sockets(server.pid)
    assert server.stop(timeout=10) == 0
