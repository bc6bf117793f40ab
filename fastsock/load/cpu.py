"""CPU time of the client (this process) and of a server process tree, for the measured window."""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class CpuTimes:
    user: float
    sys: float

    def __sub__(self, other: CpuTimes) -> CpuTimes:
        return CpuTimes(self.user - other.user, self.sys - other.sys)


def self_times() -> CpuTimes:
    """User and system CPU seconds of this process (all its threads)."""
    t = os.times()
    return CpuTimes(t.user, t.system)


class ServerCpu:
    """CPU seconds of a server process and its children (a ``--workers N`` server forks)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.process = psutil.Process(pid)  # NoSuchProcess is the caller's usage error

    def times(self) -> CpuTimes | None:
        """Current totals, or None once the server is gone. Children that exited before this
        call are not counted: psutil only sees living processes."""
        try:
            procs = [self.process, *self.process.children(recursive=True)]
        except psutil.Error:
            return None
        user = system = 0.0
        for proc in procs:
            try:
                t = proc.cpu_times()
            except psutil.Error:
                continue
            user += t.user
            system += t.system
        return CpuTimes(user, system)


def client_cores(procs: int) -> int:
    """Cores the client can use: one per process, at most the CPUs it may run on."""
    return max(1, min(procs, len(os.sched_getaffinity(0))))


def is_client_bound(cpu_util: float, cores: int) -> bool:
    """The client measured itself rather than the server: it used >= 90% of its cores."""
    return cpu_util >= 0.9 * cores
