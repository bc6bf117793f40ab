"""Ping-pong round-trip time over one connection, as a pyperf benchmark script.

Run by the harness (``bench/matrix/runrtt.py``), never imported by it: pyperf re-executes this
file in worker processes, so it imports nothing from ``bench`` (only pyperf and the installed
fastsock).

Each pyperf *value* is ONE round trip (the harness passes ``--loops 1``): send ``size`` bytes to
an echo server, read ``size`` bytes back, verify them. So the values are the RTT distribution
itself and their percentiles are RTT percentiles, not percentiles of means over many loops.
One file per transport (``pyperf-rtt-unix.json``, ``pyperf-rtt-tcp.json``) with the same
benchmark names in each, so ``python -m pyperf compare_to TCP.json UNIX.json`` pairs them.

    python bench/matrix/rtt.py --endpoint unix:/tmp/x.sock --sizes 64,4096 --server fastsock \\
        --placement unpinned --loops 1 --values 100 --processes 1 --append out.json
"""

from __future__ import annotations

import select
import time

import pyperf

from fastsock.address import Endpoint, connect, parse_endpoint

# Up to this size a blocking send-then-receive cannot deadlock: the whole message fits in the
# kernel's socket buffers (Linux defaults are >= 208 KiB for AF_UNIX and TCP loopback), so the
# echo server never blocks on us while we are still sending. Larger messages interleave.
BLOCKING_MAX = 64 * 1024


def benchmark_name(server: str, size: int, placement: str) -> str:
    """The pyperf benchmark name; the transport is the file, not the name (see module doc)."""
    return f"{server}-{size}B-{placement}"


class PingPong:
    """One connection and one preallocated message; ``round_trip()`` does one RTT."""

    def __init__(self, endpoint: Endpoint, size: int) -> None:
        self.size = size
        self.sock = connect(endpoint, timeout=10.0)
        # Blocking without a timeout: with a timeout CPython polls before every send/recv, an
        # extra syscall per call that would be measured as RTT. The harness kills a stuck worker.
        self.sock.settimeout(None)
        self.out = bytes(i & 0xFF for i in range(size))
        self.buf = bytearray(size)
        self.view = memoryview(self.buf)

    def round_trip(self) -> None:
        if self.size <= BLOCKING_MAX:
            self.sock.sendall(self.out)
            got = 0
            while got < self.size:
                n = self.sock.recv_into(self.view[got:])
                if n == 0:
                    raise ConnectionError("server closed the connection mid-message")
                got += n
        else:
            self._interleaved()
        if self.buf != self.out:
            raise ValueError(f"echo mismatch in a {self.size}-byte message")

    def _interleaved(self) -> None:
        """Write and read at the same time so a 1 MiB message cannot deadlock on full buffers."""
        sock, out, size = self.sock, memoryview(self.out), self.size
        sent = got = 0
        sock.setblocking(False)
        poller = select.poll()
        try:
            while got < size:
                if sent < size:
                    try:
                        sent += sock.send(out[sent : sent + BLOCKING_MAX])
                    except BlockingIOError:
                        pass
                try:
                    n = sock.recv_into(self.view[got:])
                    if n == 0:
                        raise ConnectionError("server closed the connection mid-message")
                    got += n
                    continue
                except BlockingIOError:
                    pass
                events = select.POLLIN | (select.POLLOUT if sent < size else 0)
                poller.register(sock, events)
                if not poller.poll(10_000):
                    raise TimeoutError("no progress for 10 s")
                poller.unregister(sock)
        finally:
            sock.setblocking(True)


_CONNECTIONS: dict[int, PingPong] = {}


def time_round_trips(loops: int, endpoint: Endpoint, size: int) -> float:
    """pyperf time function: seconds for ``loops`` round trips on a kept-open connection."""
    pp = _CONNECTIONS.get(size)
    if pp is None:
        # Connect outside the timed region; the first call is a pyperf warm-up anyway.
        pp = _CONNECTIONS[size] = PingPong(endpoint, size)
    clock = time.perf_counter
    start = clock()
    for _ in range(loops):
        pp.round_trip()
    return clock() - start


def _add_args(cmd: list[str], args) -> None:
    """Pass our options on to the worker processes pyperf spawns."""
    cmd.extend(["--endpoint", args.endpoint, "--sizes", args.sizes])
    cmd.extend(["--server", args.server, "--placement", args.placement])


def main() -> None:
    runner = pyperf.Runner(add_cmdline_args=_add_args)
    parser = runner.argparser
    parser.add_argument("--endpoint", required=True, help="echo server, e.g. unix:/tmp/x.sock")
    parser.add_argument("--sizes", required=True, help="comma-separated message sizes in bytes")
    parser.add_argument("--server", required=True, help="server name, for the benchmark name")
    parser.add_argument("--placement", default="unpinned", help="placement name, for the name")
    args = runner.parse_args()
    endpoint = parse_endpoint(args.endpoint)
    sizes = [int(s) for s in args.sizes.split(",")]
    runner.metadata["endpoint"] = str(endpoint)
    runner.metadata["transport"] = endpoint.transport
    runner.metadata["server"] = args.server
    runner.metadata["placement"] = args.placement
    for size in sizes:
        name = benchmark_name(args.server, size, args.placement)
        runner.bench_time_func(name, time_round_trips, endpoint, size)


if __name__ == "__main__":
    main()
