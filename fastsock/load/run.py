"""``run_load``: connect, run one or more worker processes in step, merge their results.

With ``procs == 1`` everything runs in the calling process. With ``procs > 1`` the caller forks
that many workers; each connects its share of the connections, reports ``ready`` on its pipe and
waits for a common start time ``t0`` on CLOCK_MONOTONIC (the same clock in every process), so the
warm-up and measured windows line up; each sends its result (histogram encoded) back as one JSON
line, and the parent merges them. Children never return into the caller's code: they leave with
``os._exit``.
"""

from __future__ import annotations

import dataclasses
import json
import mmap
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psutil

from fastsock import metadata
from fastsock.load import report
from fastsock.load.config import NATIVE_RX, ConfigError, LoadConfig
from fastsock.load.conn import ConnectError, connect_many, ensure_fd_limit
from fastsock.load.datagram import run_datagram
from fastsock.load.engine import TX_CHUNK, Engine, Plan
from fastsock.load.http import HttpTarget, probe
from fastsock.load.http_engine import HttpEngine
from fastsock.load.native_engine import NATIVE_WORKLOADS, NativeEngine
from fastsock.load.stream_engine import StreamEngine
from fastsock.native import load_engine_module

START_DELAY_NS = 50_000_000  # time from "all ready" to t0, so every worker is waiting for it
RESULT_SLACK_S = 60.0  # beyond warm-up + duration, how long to wait for a worker's result


def plans_for(config: LoadConfig, http: HttpTarget | None = None) -> list[tuple[Plan, int]]:
    """Each process's plan and connection count: connections and rate split as evenly as
    possible (the rate in proportion to the connections). ``http``: the probed target of the
    http workload."""
    base, extra = divmod(config.conns, config.procs)
    plans = []
    first = 0
    for i in range(config.procs):
        count = base + (1 if i < extra else 0)
        rate = config.rate * count / config.conns if config.rate is not None else None
        plan = Plan(
            workload=config.workload,
            size=config.size,
            depth=config.depth,
            rate=rate,
            warmup=config.warmup,
            duration=config.duration,
            first_index=first,
            server_pid=config.server_pid if i == 0 else None,
            http=http,
            verify_every=config.verify_every,
            engine=config.engine,
            tx_chunk=config.size if config.sock_type == "seqpacket" else TX_CHUNK,
        )
        plans.append((plan, count))
        first += count
    return plans


def run_load(config: LoadConfig) -> dict:
    """Run the load described by ``config`` and return the ``fastsock.load/1`` result dict.

    Raises :class:`ConfigError` for bad parameters and :class:`ConnectError` when the server
    cannot be reached (refused, no such socket, timeout); for the http workload also its
    subclass :class:`~fastsock.load.http.HttpProbeError` when the probe GET before the run gets
    an answer that cannot be checked (not 200, no Content-Length, ``Connection: close``...).
    Errors during the run (mismatches, resets, closes) do not raise: they are counted in
    ``result["errors"]``.
    """
    config.validate()
    config = dataclasses.replace(config, engine=resolve_engine(config))
    if config.server_pid is not None:
        _check_server_pid(config.server_pid)
    http = None
    if config.workload == "http":
        assert config.path is not None
        # One GET on its own connection, before any load: the length and CRC-32 every answer
        # of the run must have (and a clean exit 2 for a 404 instead of a run of errors).
        http = probe(config.endpoint, config.path, config.connect_timeout)
        config = dataclasses.replace(config, size=http.length)
    meta = metadata.for_load(config.command_line)
    progress = None
    if config.progress:
        progress = report.ProgressLine(sys.stderr, config.warmup + config.duration)
    try:
        if config.sock_type == "dgram":
            workers = [run_datagram(config)]
        elif config.procs == 1:
            workers = [_run_here(config, http, progress)]
        else:
            workers = _run_forked(config, http, progress)
    finally:
        if progress is not None:
            progress.close()
    return report.build(config, workers, meta)


def resolve_engine(config: LoadConfig) -> str:
    """The engine that runs: ``native`` or ``python``. ``auto`` takes native when it was built
    and says once on stderr when it falls back; ``native`` without the module is a usage error.
    http has no native loop: auto runs it in Python without a note (nothing fell back)."""
    if config.engine == "python" or config.workload not in NATIVE_WORKLOADS:
        return "python"
    if config.sock_type == "dgram":
        return "python"  # datagrams have their own loop (fastsock/load/datagram.py)
    if config.sock_type == "seqpacket" and config.size > NATIVE_RX:
        # The native loop reads at most 256 KiB per recv; a longer message would be cut.
        return "python"
    module, why = load_engine_module()
    if module is not None:
        return "native"
    if config.engine == "native":
        raise ConfigError(f"--engine native: {why}")
    print(f"fastsock load: {why}; using the Python engine", file=sys.stderr, flush=True)
    return "python"


def _check_server_pid(pid: int) -> None:
    try:
        psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:
        raise ConfigError(f"--server-pid {pid}: no such process") from None
    except psutil.Error as err:
        raise ConfigError(f"--server-pid {pid}: cannot read its CPU times ({err})") from None


def make_engine(
    plan: Plan, sockets: list, progress: Callable[[bool, int], None] | None
) -> Engine | NativeEngine:
    """The engine that runs ``plan.workload`` on ``plan.engine``."""
    if plan.workload == "http":
        return HttpEngine(plan, sockets, progress)
    if plan.engine == "native":
        module, why = load_engine_module()
        if module is None:  # resolve_engine checked; a forked worker sees the same modules
            raise ConfigError(f"--engine native: {why}")
        return NativeEngine(plan, sockets, progress, module)
    if plan.workload in ("send", "recv"):
        return StreamEngine(plan, sockets, progress)
    return Engine(plan, sockets, progress)


def _run_here(
    config: LoadConfig, http: HttpTarget | None, progress: report.ProgressLine | None
) -> dict:
    ((plan, count),) = plans_for(config, http)
    ensure_fd_limit(count + 64)
    sockets = connect_many(config.endpoint, count, config.connect_timeout, config.socket_type)
    engine = make_engine(plan, sockets, progress.update if progress else None)
    return engine.run(time.monotonic_ns())


@dataclass
class _Child:
    pid: int
    results: int  # read end of the child's result pipe
    go: int  # write end of the pipe that carries t0
    buf: bytes = b""
    done: bool = False


def _child_main(config: LoadConfig, plan: Plan, count: int, results: int, go: int, slot) -> int:
    """A worker process: connect, say ready, wait for t0, run, send the result."""

    def send(obj: dict) -> None:
        data = (json.dumps(obj) + "\n").encode()
        while data:
            data = data[os.write(results, data) :]

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles ^C and stops us
    try:
        ensure_fd_limit(count + 64)
        sockets = connect_many(config.endpoint, count, config.connect_timeout, config.socket_type)
    except ConnectError as err:
        send({"fatal": err.kind, "message": str(err)})
        return 2
    send({"ready": True})
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(go, 64)
        if not chunk:
            return 3  # the parent went away
        line += chunk
    t0 = int(line)

    def progress(measuring: bool, done: int) -> None:
        slot[0] = done

    engine = make_engine(plan, sockets, progress)
    send({"result": engine.run(t0)})
    return 0


def _run_forked(
    config: LoadConfig, http: HttpTarget | None, progress: report.ProgressLine | None
) -> list[dict]:
    plans = plans_for(config, http)
    shared = mmap.mmap(-1, 8 * len(plans))
    counters = memoryview(shared).cast("q")
    children: list[_Child] = []
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        for i, (plan, count) in enumerate(plans):
            r_res, w_res = os.pipe()
            r_go, w_go = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child, which leaves with _exit
                code = 1
                try:
                    os.close(r_res)
                    os.close(w_go)
                    for other in children:
                        os.close(other.results)
                        os.close(other.go)
                    code = _child_main(config, plan, count, w_res, r_go, counters[i : i + 1])
                except BaseException as err:  # noqa: BLE001 - report anything, never return
                    try:
                        msg = json.dumps({"fatal": "other", "message": repr(err)}) + "\n"
                        os.write(w_res, msg.encode())
                    except OSError:
                        pass
                finally:
                    os._exit(code)
            os.close(w_res)
            os.close(r_go)
            children.append(_Child(pid, r_res, w_go))

        ready_deadline = time.monotonic() + config.connect_timeout + 10
        for msg in _messages(children, ready_deadline, None):
            if "fatal" in msg:
                raise ConnectError(msg["fatal"], msg["message"])
        t0 = time.monotonic_ns() + START_DELAY_NS
        for child in children:
            os.write(child.go, f"{t0}\n".encode())
            child.done = False
        end_deadline = time.monotonic() + config.warmup + config.duration + RESULT_SLACK_S
        warm_end = t0 + int(config.warmup * 1e9)
        end = warm_end + int(config.duration * 1e9)

        def tick() -> None:
            now = time.monotonic_ns()
            if progress is not None and now < end:
                progress.update(now >= warm_end, sum(counters))

        results = []
        for msg in _messages(children, end_deadline, tick):
            if "fatal" in msg:
                raise ConnectError(msg["fatal"], msg["message"])
            results.append(msg["result"])
        return results
    finally:
        for child in children:
            for fd in (child.results, child.go):
                try:
                    os.close(fd)
                except OSError:
                    pass
            _reap(child.pid)
        counters.release()
        shared.close()


def _messages(
    children: list[_Child], deadline: float, tick: Callable[[], None] | None
) -> Iterator[dict]:
    """Yield one JSON message per child (the next line on its pipe), in arrival order;
    ``tick`` runs every 0.25 s meanwhile (progress)."""
    waiting = {c.results: c for c in children}
    while waiting:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ConnectError("timeout", "load worker processes did not answer in time")
        readable, _, _ = select.select(list(waiting), [], [], min(left, 0.25))
        if tick is not None:
            tick()
        for fd in readable:
            child = waiting[fd]
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                del waiting[fd]
                yield {"fatal": "other", "message": f"load worker {child.pid} died"}
                continue
            child.buf += chunk
            if b"\n" in child.buf:
                line, child.buf = child.buf.split(b"\n", 1)
                del waiting[fd]
                yield json.loads(line)


def _reap(pid: int) -> None:
    """Wait for a worker; one that does not finish promptly is killed (by its PID)."""
    for _ in range(50):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)
