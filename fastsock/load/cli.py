"""``fastsock load``: the click command around :func:`fastsock.load.run_load`.

Exit status: 0 when the run was clean, 1 when any error was counted during the run (mismatch,
short read, reset, server closed), 2 when the server cannot be reached or the parameters are
nonsense (click's usage errors also exit 2).
"""

from __future__ import annotations

import logging
import shlex
import sys

import click

from fastsock.address import Endpoint, EndpointError, endpoint_from_options
from fastsock.jsonout import write_json_or_exit
from fastsock.load import report
from fastsock.load.config import (
    WORKLOADS,
    ConfigError,
    LoadConfig,
)
from fastsock.load.conn import ConnectError
from fastsock.load.options import given, option
from fastsock.load.run import run_load
from fastsock.units import SizeType


def _endpoint(host: str, port: int | None, unix: str | None) -> Endpoint:
    try:
        return endpoint_from_options(host, port, unix)
    except EndpointError as err:
        raise click.UsageError(str(err)) from None


@click.command(context_settings={"show_default": True})
@click.option("--host", default="127.0.0.1", help="Server IP address (IPv4 or IPv6).")
@click.option("--port", type=click.IntRange(1, 65535), help="Server TCP port.")
@click.option("--unix", "unix", metavar="PATH", help="Server UNIX socket path (@name: abstract).")
@click.option(
    "--size",
    type=SizeType(),
    default="64",
    help="Message size (1 B to 16 MiB). Not with --http: the size is the file's.",
)
@option("conns")
@click.option("--duration", type=click.FloatRange(0, min_open=True), default=5.0, help="Seconds.")
@click.option(
    "--warmup", type=click.FloatRange(0), default=0.5, help="Seconds run first and discarded."
)
@option(
    "depth",
    help="Messages in flight per connection (closed loop; pipelining). --http: requests "
    "pipelined per connection.",
)
@option(
    "rate",
    help="Open loop: messages/s in total on a fixed schedule (latency corrected for "
    "coordinated omission). Without it: closed loop.",
)
@option("procs")
@click.option(
    "--workload",
    type=click.Choice(WORKLOADS),
    default="echo",
    help="echo: request/response, every byte verified; send: one-way to a discard server; "
    "recv: one-way from a source server; http: GET --http PATH (implied by --http).",
)
@option(
    "http",
    help="HTTP load: keep-alive GETs of this URL path (e.g. /file.bin; `fastsock serve --mode "
    "http`). A probe GET first learns the body's length and CRC-32; every answer must be 200 "
    "with that Content-Length and body, else it counts as an error. A 404 or an answer without "
    "Content-Length stops before the run (exit 2). Messages are answers, bytes body bytes.",
)
@option(
    "verify-every",
    help="--http: CRC-32 only every K-th body per connection (status and length are always "
    "checked). CRC-32 runs at ~3 GB/s on one core: with big files it can make the client the "
    "limit (see cpu.client_bound).",
)
@option(
    "type",
    help="Socket type (as `fastsock serve --type`). seqpacket: UNIX message connections. "
    "dgram: UDP or UNIX datagrams with sequence numbers; lost, duplicated, reordered and "
    "corrupted datagrams are counted (a loss is a result over UDP, an error over UNIX), and a "
    "datagram unanswered for 0.2 s counts as lost so the window moves on.",
)
@option("engine")
@click.option("--server-pid", type=int, default=None, help="Also measure this server's CPU time.")
@option("json")
@option("quiet")
@option("verbose")
def load(
    host: str,
    port: int | None,
    unix: str | None,
    size: int,
    conns: int,
    duration: float,
    warmup: float,
    depth: int,
    rate: float | None,
    procs: int,
    workload: str,
    http_path: str | None,
    verify_every: int,
    sock_type: str,
    engine: str,
    server_pid: int | None,
    json_out: str | None,
    quiet: bool,
    verbose: bool,
) -> None:
    """Drive a stream server with echo, send, recv or HTTP load and report throughput and
    latency.

    \b
    Closed loop (default): each connection keeps --depth messages in flight.
    Open loop (--rate R): R messages/s in total on a fixed schedule.
    HTTP (--http /file): GETs on keep-alive connections, --depth pipelined.
    Exit status: 0 ok, 1 errors counted during the run, 2 unreachable server or bad usage.
    """
    logging.basicConfig(
        level=logging.WARNING if verbose else logging.ERROR, format="fastsock load: %(message)s"
    )
    ctx = click.get_current_context()
    if http_path is not None:
        if given(ctx, "workload") and workload != "http":
            raise click.UsageError(f"--http PATH makes the workload http, not {workload}")
        workload = "http"
        if given(ctx, "size"):
            raise click.UsageError("--size is not for --http: the size is the file's length")
    config = LoadConfig(
        endpoint=_endpoint(host, port, unix),
        size=size,
        conns=conns,
        duration=duration,
        warmup=warmup,
        depth=depth,
        rate=rate,
        procs=procs,
        workload=workload,
        server_pid=server_pid,
        path=http_path,
        verify_every=verify_every,
        sock_type=sock_type,
        engine=engine,
        progress=not quiet and sys.stderr.isatty(),
        command_line=shlex.join(sys.argv),
    )
    try:
        config.validate()
        result = run_load(config)
    except ConfigError as err:
        raise click.UsageError(str(err)) from None
    except ConnectError as err:
        click.echo(f"fastsock load: {err}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("fastsock load: interrupted", err=True)
        sys.exit(130)
    if json_out is not None:
        write_json_or_exit(result, json_out, "fastsock load")
    if not quiet:
        # With --json - the JSON owns stdout; the summary goes to stderr.
        click.echo(report.summary(result), err=json_out == "-")
    sys.exit(1 if result["errors"]["total"] else 0)
