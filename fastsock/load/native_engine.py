"""The native engine: the same plan and worker result as :class:`fastsock.load.engine.Engine`,
with the hot loop in C (``fastsock/native/loadcore.c``, run with the GIL released).

Python keeps what it owns in the Python engine: the sockets (connected by ``connect_many``), the
pattern bytes (:class:`~fastsock.load.pattern.Pattern`, so both engines send the same streams),
the HDR bucket layout (:class:`~fastsock.load.histogram.LatencyRecorder`: C counts straight into
its counts array, which then converts exactly into an ``HdrHistogram``), and the server's CPU
time and the progress line, sampled by a helper thread while C runs.
"""

from __future__ import annotations

import array
import socket
import threading
import time
from types import ModuleType

from fastsock.load.conn import close_cleanly
from fastsock.load.cpu import CpuTimes, ServerCpu
from fastsock.load.engine import CLOSE_TIMEOUT_NS, RX_CAP, Plan, ProgressFn
from fastsock.load.histogram import HIGHEST_NS, LOWEST_NS, LatencyRecorder
from fastsock.load.pattern import Pattern
from fastsock.load.schedule import phases
from fastsock.load.window import LATENCY_WORKLOADS, messages_and_bytes, worker_result

NATIVE_WORKLOADS = ("echo", "send", "recv")
TICK_S = 0.25


class NativeEngine:
    """Runs one process's connections in C; :meth:`run` returns the worker result dict."""

    def __init__(
        self,
        plan: Plan,
        sockets: list[socket.socket],
        progress: ProgressFn | None,
        module: ModuleType,
    ) -> None:
        if plan.workload not in NATIVE_WORKLOADS:
            raise ValueError(f"the native engine has no {plan.workload} workload")
        self.plan = plan
        self.sockets = sockets
        self.progress = progress
        self.module = module
        self.pattern = Pattern(plan.size)
        self.recorder = LatencyRecorder()
        self.server_cpu = ServerCpu(plan.server_pid) if plan.server_pid else None

    def run(self, t0: int) -> dict:
        """Run the plan from ``t0`` (a ``time.monotonic_ns()`` value, maybe in the future)."""
        plan = self.plan
        warm_end, end = phases(t0, plan.warmup, plan.duration)
        latency = plan.workload in LATENCY_WORKLOADS
        done = array.array("q", [0])
        conn_counts = array.array("Q", bytes(8 * len(self.sockets)))
        sampler = Sampler(self.server_cpu, self.progress, done, warm_end, end)
        sampler.start()
        finished = False
        try:
            raw = self.module.run(
                [s.fileno() for s in self.sockets],
                workload=plan.workload,
                size=plan.size,
                depth=plan.depth,
                rate=plan.rate or 0.0,
                t0_ns=t0,
                warm_end_ns=warm_end,
                end_ns=end,
                first_index=plan.first_index,
                pattern=self.pattern.data,
                period=self.pattern.period,
                counts=self.recorder.counts if latency else None,
                half_magnitude=self.recorder.half_magnitude,
                lowest=LOWEST_NS,
                highest=HIGHEST_NS,
                progress=done,
                # seqpacket: one message per send (Plan.tx_chunk is the message size there)
                tx_chunk=plan.tx_chunk,
                conn_counts=conn_counts,
            )
            finished = True
        finally:
            sampler.stop()
            if finished:  # a normal end: no reset for the server to count (as in Python)
                close_cleanly(
                    self.sockets, time.monotonic_ns() + CLOSE_TIMEOUT_NS, bytearray(RX_CAP)
                )
            for s in self.sockets:
                s.close()
        messages, nbytes = messages_and_bytes(plan.workload, raw["completed"], plan.size)
        return worker_result(
            messages=messages,
            nbytes=nbytes,
            elapsed_ns=raw["window_end_ns"] - raw["window_start_ns"],
            errors=raw["errors"],
            error_samples=raw["error_samples"],
            histogram=self.recorder.encoded() if latency else None,
            incomplete=raw["incomplete"],
            conns_alive=raw["conns_alive"],
            cpu=CpuTimes(raw["cpu_user_s"], raw["cpu_sys_s"]),
            server=sampler.server_window(),
            conn_messages=[messages_and_bytes(plan.workload, n, plan.size)[0] for n in conn_counts],
        )


class Sampler(threading.Thread):
    """While C runs (GIL released): the server's CPU times at the window's edges, and the
    progress callback every ``TICK_S``. Sleeps in between; costs nothing measurable."""

    def __init__(
        self,
        server_cpu: ServerCpu | None,
        progress: ProgressFn | None,
        done: array.array,
        warm_end: int,
        end: int,
    ) -> None:
        super().__init__(name="fastsock-load-sampler", daemon=True)
        self.server_cpu = server_cpu
        self.progress = progress
        self.done = done
        self.warm_end = warm_end
        self.end = end
        self.stopped = threading.Event()
        self.at_start: CpuTimes | None = None
        self.at_end: CpuTimes | None = None

    def run(self) -> None:
        if self.server_cpu is None and self.progress is None:
            return
        started = False
        while True:
            now = time.monotonic_ns()
            if not started and now >= self.warm_end:
                started = True
                if self.server_cpu is not None:
                    self.at_start = self.server_cpu.times()
            if now >= self.end:
                break
            if self.progress is not None:
                self.progress(started, self.done[0])
            wake = self.warm_end if not started else self.end
            wait = min((wake - now) / 1e9, TICK_S if self.progress else float("inf"))
            if self.stopped.wait(max(wait, 0.0)):
                break
        if self.server_cpu is not None:
            if self.at_start is None:
                self.at_start = self.server_cpu.times()
            self.at_end = self.server_cpu.times()

    def stop(self) -> None:
        self.stopped.set()
        if self.is_alive() or self.ident is not None:
            self.join()

    def server_window(self) -> CpuTimes | None:
        if self.at_start is None or self.at_end is None:
            return None
        return self.at_end - self.at_start
