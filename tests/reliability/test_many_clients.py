"""Issue 15, item 5: 10,000 concurrent connections, every one of them active, all served.

Needs two descriptors per connection on this machine (client and server side): the test raises
RLIMIT_NOFILE for itself and the server it starts, and skips, saying why, only where the kernel
refuses.
"""

from __future__ import annotations

import resource
import select
import time

import psutil
import pytest

from fastsock.load.conn import connect_many
from tests.conftest import parse_stats

COUNT = 10_000
ROUNDS = 3
NEEDED = COUNT + 1000  # per process: the connections plus what pytest and Python hold


@pytest.fixture
def fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        if soft < NEEDED:
            resource.setrlimit(resource.RLIMIT_NOFILE, (NEEDED, max(hard, NEEDED)))
    except (ValueError, OSError) as err:
        pytest.skip(f"the kernel refuses RLIMIT_NOFILE {NEEDED} (hard limit {hard}): {err}")
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def message(index: int, round_: int) -> bytes:
    return f"conn {index:05d} round {round_}\n".encode()


@pytest.mark.timeout(120)
def test_ten_thousand_active_connections_are_all_served(serve, tmp_path, fd_limit):
    server = serve("--unix", str(tmp_path / "many.sock"))  # inherits the raised limit
    rss_before = psutil.Process(server.pid).memory_info().rss
    started = time.monotonic()
    socks = connect_many(server.endpoint, COUNT, timeout=60)
    connected = time.monotonic() - started
    ep = select.epoll()
    index_of = {s.fileno(): i for i, s in enumerate(socks)}
    try:
        for s in socks:
            ep.register(s.fileno(), select.EPOLLIN)
        for round_ in range(ROUNDS):
            for i, s in enumerate(socks):
                s.send(message(i, round_))  # 19 bytes into an empty buffer: never partial
            waiting = set(index_of)
            deadline = time.monotonic() + 60
            while waiting and time.monotonic() < deadline:
                for fd, _ in ep.poll(1.0):
                    if fd not in waiting:
                        continue
                    i = index_of[fd]
                    want = message(i, round_)
                    got = socks[i].recv(len(want))
                    assert got == want, f"connection {i}: {got!r}"
                    waiting.discard(fd)
            assert not waiting, f"round {round_}: {len(waiting)} connections got no echo"
        rss_during = psutil.Process(server.pid).memory_info().rss
        fds_during = psutil.Process(server.pid).num_fds()
    finally:
        ep.close()
        for s in socks:
            s.close()
    assert server.stop() == 0
    stats = parse_stats(server.stderr_text)
    print(
        f"\n{COUNT} connections in {connected:.1f} s, {ROUNDS} echo rounds each; server RSS "
        f"{rss_before >> 20} MiB idle -> {rss_during >> 20} MiB with {COUNT} connections "
        f"({(rss_during - rss_before) / COUNT / 1024:.1f} KiB each), {fds_during} fds; {stats}"
    )
    assert stats["peak_conns"] == COUNT
    assert stats["accepted"] == stats["closed"] == COUNT
    assert stats["rejected"] == stats["resets"] == stats["errors"] == 0
    assert stats["bytes_in"] == stats["bytes_out"] == COUNT * ROUNDS * len(message(0, 0))
