"""The measured window of a load run, and the worker result it ends in.

Every engine measures the same things over its window: where it began and ended, the CPU time
this process (and the server, when its pid is known) used in it, and the messages still
unanswered when it closed. :func:`worker_result` is the one shape of what a worker process
hands to :func:`fastsock.load.report.build`, whichever engine ran.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

from fastsock.load.cpu import CpuTimes, ServerCpu, self_times

# Workloads made of messages with a latency each (an engine's count is of messages); the others
# stream bytes (the count is of bytes) and record no latency.
LATENCY_WORKLOADS = ("echo", "http")


class Window:
    """The edges of the measured window and the CPU times read at them. :meth:`begin` and
    :meth:`close` are called once each; until then ``start``/``end`` are None."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_cpu = ServerCpu(server_pid) if server_pid else None
        self.start: int | None = None
        self.end: int | None = None
        self.cpu_at_start = self.cpu_at_end = CpuTimes(0.0, 0.0)
        self.server_at_start: CpuTimes | None = None
        self.server_at_end: CpuTimes | None = None

    def begin(self, now: int) -> None:
        self.start = now
        self.cpu_at_start = self_times()
        self.server_at_start = self.server_cpu.times() if self.server_cpu else None

    def close(self, now: int) -> None:
        self.end = now
        self.cpu_at_end = self_times()
        self.server_at_end = self.server_cpu.times() if self.server_cpu else None

    @property
    def elapsed_ns(self) -> int:
        assert self.start is not None and self.end is not None
        return self.end - self.start

    @property
    def cpu(self) -> CpuTimes:
        """This process's CPU time over the window."""
        return self.cpu_at_end - self.cpu_at_start

    @property
    def server(self) -> CpuTimes | None:
        """The server's CPU time over the window, if it was measured."""
        if self.server_at_start is None or self.server_at_end is None:
            return None
        return self.server_at_end - self.server_at_start


def age_unanswered(
    record: Callable[[int], object], now: int, pending: Iterable[Collection[int]]
) -> int:
    """Open loop, at the window's close: record each message still in flight with its age now
    (a lower bound of its latency, so a stall at the very end is not lost). ``pending`` holds
    the send/due times of each connection's messages in flight. Returns how many there were."""
    count = 0
    for stamps in pending:
        for stamp in stamps:
            record(now - stamp)
        count += len(stamps)
    return count


def window_counts(
    at_start: list[int] | None, at_end: list[int], workload: str, size: int
) -> list[int]:
    """Per connection, what an engine counted between the window's edges, in messages: the
    engine's unit is messages for a latency workload, else bytes (``// size``, as the total)."""
    if at_start is None:  # no window began (every connection failed in the warm-up)
        return [0] * len(at_end)
    moved = [end - start for start, end in zip(at_start, at_end, strict=True)]
    if workload in LATENCY_WORKLOADS:
        return moved
    return [m // size for m in moved]


def messages_and_bytes(workload: str, moved: int, size: int) -> tuple[int, int]:
    """An engine's count as (messages, bytes): messages for a latency workload, else bytes."""
    if workload in LATENCY_WORKLOADS:
        return moved, moved * size
    return moved // size, moved


def worker_result(
    *,
    messages: int,
    nbytes: int,
    elapsed_ns: int,
    errors: dict[str, int],
    error_samples: list[str],
    histogram: str | None,
    incomplete: int,
    conns_alive: int,
    cpu: CpuTimes,
    server: CpuTimes | None,
    conn_messages: list[int] | None = None,
) -> dict:
    """What one worker process returns (see ``fastsock/load/SCHEMA.md`` for the merged form).
    ``conn_messages``: messages each of its connections completed in the window (None: the
    engine does not count them)."""
    return {
        "messages": messages,
        "bytes": nbytes,
        "elapsed_ns": elapsed_ns,
        "errors": errors,
        "error_samples": error_samples,
        "histogram": histogram,
        "incomplete": incomplete,
        "conns_alive": conns_alive,
        "cpu_user_s": cpu.user,
        "cpu_sys_s": cpu.sys,
        "server_user_s": server.user if server else None,
        "server_sys_s": server.sys if server else None,
        "conn_messages": conn_messages,
    }
