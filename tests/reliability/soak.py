"""The integrity soak's client: many connections, random message sizes and pipelining depths,
every byte checked, and the server's RSS and descriptor count sampled every second.

One thread, one epoll. Echo connections keep ``depth`` messages in flight (sizes 1 B..4 MiB,
both drawn again for every message); the stream of connection ``i`` is a random pattern from
``fastsock.load.pattern`` at a per-connection offset, so a byte lost, duplicated, reordered or
delivered on another connection fails the comparison. Source connections check byte ``k`` is
``k % 256``. At the end every connection is closed cleanly (shut down, read to EOF, close).
"""

from __future__ import annotations

import random
import select
import socket
import time
from collections import deque
from dataclasses import dataclass, field

import psutil

from fastsock.address import Endpoint
from fastsock.handlers.source import PERIOD
from fastsock.load.pattern import Pattern

MAX_MSG = 4 << 20
MAX_DEPTH = 16
CHUNK = 256 << 10
SOURCE = PERIOD * (CHUNK // 256 + 1)


@dataclass
class Sample:
    t: float
    rss: int
    fds: int


@dataclass
class SoakResult:
    echo_bytes: int = 0  # bytes echoed back and verified
    source_bytes: int = 0  # bytes read from source servers and verified
    messages: int = 0
    corrupt: int = 0  # chunks that differed from what was sent
    lost: int = 0  # bytes sent and never echoed
    early_eof: int = 0  # connections the server closed before the client was done
    samples: dict[int, list[Sample]] = field(default_factory=dict)  # server pid -> samples
    stop_index: int = 0  # samples[stop_index]: taken when the run ended, all still connected


class _Conn:
    __slots__ = ("sock", "fd", "echo", "seed", "tx", "rx", "ends", "depth", "done", "eof")

    def __init__(self, sock: socket.socket, echo: bool, seed: int, depth: int) -> None:
        self.sock, self.fd, self.echo, self.seed = sock, sock.fileno(), echo, seed
        self.tx = self.rx = 0  # stream bytes sent / received (and verified)
        self.ends: deque[int] = deque()  # stream offsets where the messages in flight end
        self.depth = depth
        self.done = False  # no new messages: finishing
        self.eof = False


def _connect(endpoint: Endpoint) -> socket.socket:
    sock = socket.socket(endpoint.family, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(endpoint.sockaddr)
    sock.setblocking(False)
    return sock


def run_soak(
    echo: Endpoint,
    source: Endpoint,
    seconds: float,
    echo_conns: int = 32,
    source_conns: int = 8,
    pids: tuple[int, ...] = (),
    seed: int = 15,
) -> SoakResult:
    rng = random.Random(seed)
    pattern = Pattern(1)
    data, view, period = pattern.data, pattern.view, pattern.period
    result = SoakResult(samples={pid: [] for pid in pids})
    procs = {pid: psutil.Process(pid) for pid in pids}
    conns: dict[int, _Conn] = {}
    ep = select.epoll()
    buf = bytearray(CHUNK)
    bview = memoryview(buf)

    def sample(now: float) -> None:
        for pid, proc in procs.items():
            result.samples[pid].append(Sample(now, proc.memory_info().rss, proc.num_fds()))

    def new_message(c: _Conn) -> None:
        # Log-uniform sizes: as many 1-100 B messages as 100 KiB-4 MiB ones.
        size = min(MAX_MSG, int(2 ** rng.uniform(0, 22)))
        c.ends.append((c.ends[-1] if c.ends else c.rx) + size)
        result.messages += 1

    def flush(c: _Conn) -> None:
        target = c.ends[-1] if c.ends else c.tx
        while c.tx < target:
            off = (c.seed + c.tx) % period
            try:
                sent = c.sock.send(view[off : off + min(target - c.tx, CHUNK)])
            except BlockingIOError:
                break
            c.tx += sent
        ep.modify(c.fd, select.EPOLLIN | (select.EPOLLOUT if c.tx < target else 0))

    sample(time.monotonic())  # the baseline: before the first connection
    for i in range(echo_conns + source_conns):
        is_echo = i < echo_conns
        c = _Conn(_connect(echo if is_echo else source), is_echo, pattern.seed_for(i), 1)
        conns[c.fd] = c
        ep.register(c.fd, select.EPOLLIN)
        if is_echo:
            c.depth = rng.randint(1, MAX_DEPTH)
            for _ in range(c.depth):
                new_message(c)
            flush(c)

    start = time.monotonic()
    next_sample = start + 1.0
    stop_at = start + seconds
    stopping = False
    while conns:
        now = time.monotonic()
        if now >= next_sample:
            sample(now)
            next_sample += 1.0
        if not stopping and now >= stop_at:
            stopping = True
            sample(now)
            result.stop_index = len(next(iter(result.samples.values()), [])) - 1
            for c in conns.values():
                c.done = True
                if not c.echo or not c.ends:
                    c.sock.shutdown(socket.SHUT_WR)
        if now > stop_at + 60:
            raise TimeoutError(f"{len(conns)} connections did not finish within 60 s")
        for fd, ev in ep.poll(max(0.0, min(next_sample - now, 0.5))):
            c = conns[fd]
            if ev & select.EPOLLOUT:
                flush(c)
            if not ev & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                continue
            try:
                n = c.sock.recv_into(buf)
            except BlockingIOError:
                continue
            if n == 0:
                if not c.done or (c.echo and c.ends):
                    result.early_eof += 1
                if c.echo:
                    result.lost += c.tx - c.rx
                del conns[fd]
                ep.unregister(fd)
                c.sock.close()
                continue
            if c.echo:
                if not data.startswith(bview[:n], (c.seed + c.rx) % period) or c.rx + n > c.tx:
                    result.corrupt += 1
                c.rx += n
                result.echo_bytes += n
                finished = False
                while c.ends and c.rx >= c.ends[0]:
                    c.ends.popleft()
                    finished = True
                if finished and not c.done:
                    if rng.random() < 0.05:
                        c.depth = rng.randint(1, MAX_DEPTH)  # a new pipelining depth now and then
                    while len(c.ends) < c.depth:
                        new_message(c)
                    flush(c)
                elif c.done and not c.ends:
                    c.sock.shutdown(socket.SHUT_WR)  # all echoed: now the clean close
            else:
                if not SOURCE.startswith(bview[:n], c.rx & 255):
                    result.corrupt += 1
                c.rx += n
                result.source_bytes += n
    ep.close()
    sample(time.monotonic())
    return result
