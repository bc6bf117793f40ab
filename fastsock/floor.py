"""The IPC floor: echo between two processes joined by a channel that needs no server.

    python -m fastsock.floor --kind pipe --size 64 --depth 1 --duration 2 --json -

Kinds (:data:`KINDS`): ``pipe`` (two ``os.pipe()``, one each way), ``socketpair`` (one
``socket.socketpair()``, AF_UNIX stream) and ``socketpair-seqpacket`` (the same with
SOCK_SEQPACKET: message boundaries kept). The parent makes the pair, starts
:mod:`fastsock.echo_child` on the other ends and drives it with the *native* load engine
(``fastsock/native/loadcore.c``, the same C loop as ``fastsock load --engine native`` and the C
load client): closed loop, ``depth`` messages in flight, every byte verified, each message's
round trip in an HDR histogram. The result is a ``fastsock.load/1`` document, so the harness
and the report read it like any ``fastsock load`` run (``params.transport`` is the kind,
``params.peer`` says who echoed, ``cpu.server_*`` is the echo child's CPU time).

It lives in the package, not in ``bench/``, because it is the load engine's own mode over
connected file descriptors (it reuses its pattern, histogram layout and report), and a user can
run it without a checkout. Without the native engine it refuses with one line: a Python loop
would measure itself, not the floor.
"""

from __future__ import annotations

import array
import fcntl
import os
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import click

KINDS = ("pipe", "socketpair", "socketpair-seqpacket")
MAX_SIZE = 16 * 1024 * 1024
NATIVE_RX_CAP = 256 * 1024  # loadcore.c's RX_CAP
# How long the parent waits for the echo child to exit once its ends are closed.
CHILD_EXIT_TIMEOUT_S = 5.0
PEER = "fastsock.echo_child: blocking readv + write, one Python process"


class FloorError(Exception):
    """The floor cannot run with these parameters here; ``str()`` is one line."""


@dataclass(frozen=True)
class FloorConfig:
    """One floor run (quacks like :class:`fastsock.load.config.LoadConfig` for the report)."""

    kind: str
    size: int = 64
    depth: int = 1
    duration: float = 2.0
    warmup: float = 0.5
    workload: str = "echo"
    procs: int = 1
    conns: int = 1

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise FloorError(f"--kind must be one of {', '.join(KINDS)}, not {self.kind}")
        if not 1 <= self.size <= MAX_SIZE:
            raise FloorError(f"--size must be 1 B to 16 MiB, not {self.size}")
        if self.kind == "socketpair-seqpacket":
            # One recv of the native engine reads at most 256 KiB, and a seqpacket message is
            # read whole or cut short (MSG_TRUNC): larger messages cannot be echoed intact.
            limit = min(seqpacket_limit(), NATIVE_RX_CAP)
            if self.size > limit:
                raise FloorError(
                    f"--size {self.size} is larger than the {limit} bytes a UNIX seqpacket "
                    "message can be here (the native engine's 256 KiB read, or SO_SNDBUF "
                    "capped by net.core.wmem_max)"
                )
        if not 1 <= self.depth <= 1024:
            raise FloorError(f"--depth must be 1 to 1024, not {self.depth}")
        if self.duration <= 0 or self.warmup < 0:
            raise FloorError("--duration must be > 0 and --warmup >= 0")

    def params(self) -> dict:
        return {
            "endpoint": self.kind,
            "transport": self.kind,
            "workload": "echo",
            "size": self.size,
            "conns": 1,
            "depth": self.depth,
            "duration": self.duration,
            "warmup": self.warmup,
            "rate": None,
            "loop": "closed",
            "procs": 1,
            "engine": "native",
            "peer": PEER,
        }


def seqpacket_limit() -> int:
    """The largest message a UNIX seqpacket socket takes here (as ``fastsock load`` checks)."""
    from fastsock.address import unix_endpoint
    from fastsock.load.limits import max_size

    return max_size(unix_endpoint("/floor"), socket.SOCK_SEQPACKET)


@dataclass
class Pair:
    """The parent's and the child's ends of one channel (read end, write end each)."""

    parent: tuple[int, int]
    child: tuple[int, int]

    def close_child_ends(self) -> None:
        for fd in set(self.child):
            os.close(fd)

    def close_parent_ends(self) -> None:
        for fd in set(self.parent):
            os.close(fd)


def buffer_bytes(pair: Pair, kind: str) -> int:
    """What the channel holds one way before a writer blocks: a pipe's capacity
    (``F_GETPIPE_SZ``, 64 KiB by default) or the socket's ``SO_SNDBUF`` (for AF_UNIX the send
    buffer is the limit: data sits in the receiver's queue but counts against the sender)."""
    fd = pair.parent[1]
    if kind == "pipe":
        return fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)
    sock = socket.socket(fileno=fd)
    try:
        return sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    finally:
        sock.detach()


def make_pair(kind: str) -> Pair:
    """A new channel of ``kind``; every fd is close-on-exec (the child gets its own two by
    ``pass_fds``)."""
    if kind == "pipe":
        to_child_r, to_child_w = os.pipe()
        to_parent_r, to_parent_w = os.pipe()
        return Pair((to_parent_r, to_child_w), (to_child_r, to_parent_w))
    sock_type = socket.SOCK_SEQPACKET if kind == "socketpair-seqpacket" else socket.SOCK_STREAM
    a, b = socket.socketpair(socket.AF_UNIX, sock_type)
    if sock_type == socket.SOCK_SEQPACKET:
        # A message must fit the send buffer whole (EMSGSIZE otherwise): as large as
        # net.core.wmem_max allows, as `fastsock load --type seqpacket` sets it (and as
        # seqpacket_limit measures it).
        for s in (a, b):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 30)
    fa, fb = a.detach(), b.detach()
    return Pair((fa, fa), (fb, fb))


ECHO_COMMAND = (sys.executable, "-m", "fastsock.echo_child")


def echo_argv(pair: Pair, size: int, command: tuple[str, ...] | list[str] = ECHO_COMMAND) -> list:
    """The echo child's command line: ``command READ_FD WRITE_FD BUFFER_BYTES`` (the buffer
    holds the largest message whole)."""
    r, w = pair.child
    return [*command, str(r), str(w), str(max(size, 1 << 18))]


def run_floor(
    config: FloorConfig,
    child_command: list[str] | None = None,
    command_line: str | None = None,
) -> dict:
    """Run one floor measurement and return its ``fastsock.load/1`` result.

    ``child_command`` replaces ``python -m fastsock.echo_child`` (tests: a child that dies);
    it gets the same three arguments (read fd, write fd, buffer bytes). A child that
    dies mid-run ends the run at once (end of file on the parent's read end): its messages
    are counted as errors (``closed``/``short_read``) and ``result["child"]`` says how it
    exited. Raises :class:`FloorError` when the run cannot start.
    """
    from fastsock.native import load_engine_module

    config.validate()
    module, why = load_engine_module()
    if module is None:
        raise FloorError(f"the floor needs the native load engine: {why}")
    pair = make_pair(config.kind)
    try:
        argv = echo_argv(pair, config.size, child_command or ECHO_COMMAND)
        child = subprocess.Popen(argv, pass_fds=sorted(set(pair.child)), stdin=subprocess.DEVNULL)
    except OSError as err:
        pair.close_child_ends()
        pair.close_parent_ends()
        raise FloorError(f"cannot start the echo child: {err.strerror or err}") from None
    pair.close_child_ends()
    held = buffer_bytes(pair, config.kind)
    try:
        worker = _measure(config, module, pair, child.pid)
    finally:
        pair.close_parent_ends()  # end of file for the child: it exits 0
        try:
            code = child.wait(CHILD_EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            code = child.wait()
    result = _result(config, worker, code, command_line)
    result["params"]["buffer_bytes"] = held
    return result


def _measure(config: FloorConfig, module, pair: Pair, child_pid: int) -> dict:
    """The native engine over the parent's ends; the worker dict of ``fastsock.load``."""
    from fastsock.load.cpu import ServerCpu
    from fastsock.load.histogram import HIGHEST_NS, LOWEST_NS, LatencyRecorder
    from fastsock.load.native_engine import Sampler
    from fastsock.load.pattern import Pattern

    rfd, wfd = pair.parent
    for fd in set(pair.parent):
        os.set_blocking(fd, False)
    pattern, recorder = Pattern(config.size), LatencyRecorder()
    try:
        child_cpu = ServerCpu(child_pid)
    except Exception:  # noqa: BLE001 - a child gone already: the run itself will say so
        child_cpu = None
    t0 = time.monotonic_ns()
    warm_end = t0 + int(config.warmup * 1e9)
    end = warm_end + int(config.duration * 1e9)
    done = array.array("q", [0])
    sampler = Sampler(child_cpu, None, done, warm_end, end)
    sampler.start()
    try:
        raw = module.run(
            [rfd],
            workload="echo",
            size=config.size,
            depth=config.depth,
            rate=0.0,
            t0_ns=t0,
            warm_end_ns=warm_end,
            end_ns=end,
            first_index=0,
            pattern=pattern.data,
            period=pattern.period,
            counts=recorder.counts,
            half_magnitude=recorder.half_magnitude,
            lowest=LOWEST_NS,
            highest=HIGHEST_NS,
            progress=done,
            wfds=[wfd],
            fd_io=config.kind == "pipe",
            tx_chunk=config.size if config.kind == "socketpair-seqpacket" else 0,
        )
    finally:
        sampler.stop()
    child = sampler.server_window()
    return {
        "messages": raw["completed"],
        "bytes": raw["completed"] * config.size,
        "elapsed_ns": raw["window_end_ns"] - raw["window_start_ns"],
        "errors": raw["errors"],
        "error_samples": raw["error_samples"],
        "histogram": recorder.encoded(),
        "incomplete": raw["incomplete"],
        "conns_alive": raw["conns_alive"],
        "cpu_user_s": raw["cpu_user_s"],
        "cpu_sys_s": raw["cpu_sys_s"],
        "server_user_s": child.user if child else None,
        "server_sys_s": child.sys if child else None,
    }


def _result(config: FloorConfig, worker: dict, code: int, command_line: str | None) -> dict:
    from fastsock import metadata
    from fastsock.load import report

    result = report.build(config, [worker], metadata.for_load(command_line))  # type: ignore[arg-type]
    result["child"] = {"exit_status": code}
    if code != 0:
        how = f"signal {-code}" if code < 0 else f"status {code}"
        result["error_samples"].insert(0, f"the echo child exited with {how}")
    return result


@click.command(context_settings={"show_default": True, "help_option_names": ["-h", "--help"]})
@click.option("--kind", type=click.Choice(KINDS), default="pipe", help="The channel.")
@click.option("--size", type=click.IntRange(1, MAX_SIZE), default=64, help="Message bytes.")
@click.option("--depth", type=click.IntRange(1, 1024), default=1, help="Messages in flight.")
@click.option("--duration", type=click.FloatRange(0, min_open=True), default=2.0, help="Seconds.")
@click.option("--warmup", type=click.FloatRange(0), default=0.5, help="Seconds discarded first.")
@click.option("--json", "json_out", metavar="FILE|-", default=None, help="Write the JSON result.")
@click.option("-q", "--quiet", is_flag=True, help="No summary.")
def main(
    kind: str,
    size: int,
    depth: int,
    duration: float,
    warmup: float,
    json_out: str | None,
    quiet: bool,
) -> None:
    """Echo over a pipe pair or a socketpair to a forked child: the floor under every socket.

    Exit status: 0 clean, 1 errors during the run (the echo child died), 2 bad usage."""
    from fastsock.jsonout import write_json_or_exit
    from fastsock.load import report

    config = FloorConfig(kind, size, depth, duration, warmup)
    try:
        result = run_floor(config, command_line=shlex.join(sys.argv))
    except FloorError as err:
        click.echo(f"fastsock floor: {err}", err=True)
        sys.exit(2)
    if json_out is not None:
        write_json_or_exit(result, json_out, "fastsock floor")
    failed = result["errors"]["total"] or result["child"]["exit_status"] != 0
    if failed:
        first = (result["error_samples"] or ["errors during the run"])[0]
        click.echo(f"fastsock floor: {first} ({result['errors']['total']} errors)", err=True)
    if not quiet:
        click.echo(report.summary(result), err=json_out == "-")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
