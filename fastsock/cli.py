"""The ``fastsock`` command line: serve, load, plot."""

from __future__ import annotations

import importlib
import sys

import click

from fastsock import __version__
from fastsock.units import SizeType


class LazyGroup(click.Group):
    """A group whose ``ab``, ``load`` and ``plot`` commands are imported only when asked for.

    Why: ``fastsock.load`` imports numpy, and numpy starts OpenBLAS worker threads. A server
    process with a second thread pays for it on every message: glibc's malloc and the GIL's
    mutexes take their multi-threaded (atomic) paths once a process has two threads. Measured
    with callgrind, 64 B echo over UNIX: see the commit that added this class.
    """

    lazy: dict[str, str] = {
        "ab": "fastsock.ab.cli:ab",
        "load": "fastsock.load.cli:load",
        "plot": "fastsock.report.cli:plot",
        "compare": "fastsock.report.compare:compare",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, _, attr = self.lazy[cmd_name].partition(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
)
@click.version_option(__version__, prog_name="fastsock")
def main() -> None:
    """UNIX-domain sockets vs TCP loopback, measured.

    \b
    fastsock serve   a non-blocking selectors server (echo, discard, source)
    fastsock load    a load generator with HDR latency histograms
    fastsock ab      is endpoint A faster than B? paired trials with 95% CIs
    fastsock plot    redraw charts and REPORT.md from saved results
    fastsock compare set two results files' findings side by side
    """


def _parse_mode(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        mode = int(text, 8)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an octal mode like 660") from None
    if not 0 <= mode <= 0o777:
        raise click.BadParameter(f"{text!r} is not a permission mode 000-777")
    return mode


def _parse_ids(text: str | None, kind: str) -> frozenset[int]:
    """``UID[,UID...]`` (or GIDs): numbers or user/group names, resolved once at start-up."""
    if text is None:
        return frozenset()
    import grp
    import pwd

    ids = set()
    for item in text.split(","):
        item = item.strip()
        if not item:
            # An empty list must not mean "everyone": say so instead of opening the socket.
            raise click.BadParameter(f"--allow-{kind} {text!r} has an empty entry")
        if item.isdigit():
            ids.add(int(item))
            continue
        try:
            ids.add(pwd.getpwnam(item).pw_uid if kind == "uid" else grp.getgrnam(item).gr_gid)
        except KeyError:
            what = "user" if kind == "uid" else "group"
            raise click.BadParameter(f"{item!r} is neither a number nor a known {what}") from None
    return frozenset(ids)


@main.command()
@click.option("--host", default="127.0.0.1", help="IP address to listen on (::1 for IPv6).")
@click.option("--port", type=click.IntRange(0, 65535), help="TCP port; 0 picks a free one.")
@click.option("--unix", "unix", metavar="PATH", help="UNIX socket path, or @name (abstract).")
@click.option(
    "--mode",
    type=click.Choice(["echo", "discard", "source", "http"]),
    default="echo",
    help="echo: send back; discard: drop; source: stream bytes k%256 to the peer; "
    "http: static files from --root.",
)
@click.option(
    "--type",
    "sock_type",
    type=click.Choice(["stream", "seqpacket", "dgram"]),
    default="stream",
    help="Socket type. stream: TCP or UNIX; seqpacket: UNIX connections that keep message "
    "boundaries; dgram: UDP (ready line udp://...) or UNIX datagrams, each answered on its own "
    "(echo to the sender, source: a datagram of the length asked for).",
)
@click.option(
    "--root",
    type=click.Path(file_okay=False, dir_okay=True, exists=True),
    help="--mode http: the directory to serve (nothing outside it is ever served).",
)
@click.option("--list-dirs", is_flag=True, help="--mode http: list directories without index.html.")
@click.option(
    "--no-sendfile",
    is_flag=True,
    help="Send file bodies by read+send through a buffer instead of os.sendfile.",
)
@click.option(
    "--open-files",
    type=click.IntRange(0, 100_000),
    default=256,
    help="--mode http: files kept open between requests (checked by fstat on each hit; 0: "
    "open per request).",
)
@click.option(
    "--memory-cache",
    type=SizeType(),
    default="8M",
    help="--mode http: also keep open files of up to 32K in memory, this many bytes in all "
    "(answered with one send each; 0: none).",
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(0),
    default=10.0,
    help="--mode http: a request head unfinished after this long gets 408 (checked every "
    "S/2, so 1-1.5 S; 0: no limit).",
)
@click.option(
    "--max-conns",
    type=click.IntRange(1, 1_000_000),
    default=10_000,
    help="Connections over this are accepted and closed at once.",
)
@click.option(
    "--idle-timeout",
    type=click.FloatRange(0),
    default=0.0,
    help="Close connections idle this many seconds (0: never).",
)
@click.option(
    "--drain-timeout",
    type=click.FloatRange(0),
    default=5.0,
    help="On SIGTERM/SIGINT, wait this long for connections to finish.",
)
@click.option("--unix-mode", metavar="OCTAL", help="Permissions of the socket file, e.g. 660.")
@click.option(
    "--allow-uid",
    metavar="UID[,UID...]",
    help="UNIX listeners: let in only peers running as these users (numbers or names; checked "
    "by SO_PEERCRED at accept, others closed at once and counted as rejected_peer).",
)
@click.option(
    "--allow-gid",
    metavar="GID[,GID...]",
    help="UNIX listeners: let in only peers whose primary group is one of these (with "
    "--allow-uid: a peer matching either is let in).",
)
@click.option(
    "--read-size",
    type=SizeType(),
    default="256K",
    help="Bytes read per recv_into (one shared buffer). --engine uring: the size of each "
    "buffer of its receive pool (--uring-pool).",
)
@click.option(
    "--high-water",
    type=SizeType(),
    default="1M",
    help="Stop reading from a connection with this much queued for sending.",
)
@click.option(
    "--low-water",
    type=SizeType(),
    default="256K",
    help="Resume reading once the queue is down to this.",
)
@click.option("--backlog", type=click.IntRange(1), default=1024, help="listen() backlog.")
@click.option(
    "--sndbuf",
    type=SizeType(),
    default="0",
    help="SO_SNDBUF of each connection (0: kernel default; capped by net.core.wmem_max).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    help="Worker processes sharing the listener (each single-threaded, its own stats line).",
)
@click.option(
    "--systemd",
    is_flag=True,
    help="Serve the listening socket systemd passed (socket activation: LISTEN_FDS, fd 3). "
    "Automatic when LISTEN_PID is this process and neither --port nor --unix is given.",
)
@click.option(
    "--engine",
    type=click.Choice(["epoll", "uring"]),
    default="epoll",
    help="epoll: readiness + recv/send (the reference); uring: io_uring completions "
    "(echo/discard/source, Linux >= 6.1 on x86-64).",
)
@click.option(
    "--uring-pool",
    default="16M",
    show_default=True,
    metavar="SIZE|COUNTxSIZE",
    help="--engine uring: receive buffers shared by all connections (a provided-buffer ring), "
    "a total cut into --read-size buffers (16M) or COUNTxSIZE (256x64K); receive memory stays "
    "this (plus 1 KiB per connection that echoes small messages), whatever the connections.",
)
@click.option(
    "--uring-no-large",
    is_flag=True,
    hidden=True,  # a benchmark's variant (large mode on / off), not a user's setting
    help="--engine uring: keep every message size on the pool's receives (no large mode).",
)
@click.option("-v", "--verbose", count=True, help="-v: info, -vv: debug logging on stderr.")
def serve(
    host: str,
    port: int | None,
    unix: str | None,
    mode: str,
    sock_type: str,
    root: str | None,
    list_dirs: bool,
    no_sendfile: bool,
    header_timeout: float,
    open_files: int,
    memory_cache: int,
    max_conns: int,
    idle_timeout: float,
    drain_timeout: float,
    unix_mode: str | None,
    allow_uid: str | None,
    allow_gid: str | None,
    read_size: int,
    high_water: int,
    low_water: int,
    backlog: int,
    sndbuf: int,
    workers: int,
    systemd: bool,
    engine: str,
    uring_pool: str,
    uring_no_large: bool,
    verbose: int,
) -> None:
    """Serve echo/discard/source/http on TCP or a UNIX socket until SIGTERM/SIGINT.

    \b
    Prints one line when ready, e.g.
      fastsock: listening on tcp://127.0.0.1:8000
    On SIGTERM/SIGINT it stops accepting, lets open connections finish (up to --drain-timeout),
    prints its stats on stderr and exits 0. Start-up errors: one line on stderr, exit 2.

    \b
    Examples:
      fastsock serve --port 8000                  # TCP on 127.0.0.1
      fastsock serve --host ::1 --port 0          # IPv6, any free port
      fastsock serve --unix ./fastsock.sock       # UNIX socket file
      fastsock serve --unix @fastsock --mode discard   # abstract namespace
      fastsock serve --port 8080 --mode http --root ./public   # static files
      fastsock serve --port 9000 --type dgram     # UDP echo: ready line udp://127.0.0.1:9000
      fastsock serve --unix ./dg.sock --type dgram   # UNIX datagram echo
      fastsock serve --systemd --allow-uid www-data   # socket from a systemd .socket unit
    """
    import logging

    from fastsock.address import SOCK_TYPES, EndpointError, endpoint_from_options, endpoint_text
    from fastsock.engines import EngineUnavailable, make_server
    from fastsock.http.config import HttpConfig
    from fastsock.server import ServerConfig
    from fastsock.systemd import activated, inherited_listener

    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)],
        format="fastsock: %(levelname)s %(message)s",
    )
    if not systemd and port is None and unix is None and activated():
        systemd = True  # started by a systemd .socket unit: take its socket
    if systemd and (port is not None or unix is not None or unix_mode is not None):
        raise click.UsageError("--systemd takes systemd's socket: no --port, --unix, --unix-mode")
    if not systemd and port is None and unix is None:
        raise click.UsageError("give --port N (0 picks a free port) or --unix PATH")
    if read_size < 1 or high_water < 1 or low_water > high_water:
        raise click.UsageError("need 1 <= --read-size, and --low-water <= --high-water")
    if (mode == "http") != (root is not None):
        raise click.UsageError("--mode http needs --root DIR, and --root needs --mode http")
    if mode == "http" and sock_type != "stream":
        click.echo(f"fastsock: --mode http needs --type stream, not {sock_type}", err=True)
        raise SystemExit(2)
    if engine == "uring" and mode == "http":
        raise click.UsageError(
            "--engine uring serves echo, discard and source; --mode http needs --engine epoll"
        )
    if engine == "uring" and workers > 1:
        raise click.UsageError("--engine uring runs one process; --workers needs --engine epoll")
    restricted = allow_uid is not None or allow_gid is not None
    if engine == "uring" and (sock_type != "stream" or restricted or systemd):
        raise click.UsageError(
            "--engine uring serves stream sockets on its own listener; --type, --allow-uid, "
            "--allow-gid and --systemd need --engine epoll"
        )
    if engine == "uring":
        from fastsock.uring.pool import PoolError, parse_pool

        try:
            parse_pool(uring_pool, read_size)
        except PoolError as err:
            raise click.UsageError(str(err)) from None
    http = None
    if root is not None:
        http = HttpConfig(
            root=root,
            list_dirs=list_dirs,
            header_timeout=header_timeout,
            open_files=open_files,
            memory_cache=memory_cache,
        )
    sock = None
    try:
        if systemd:
            sock, endpoint = inherited_listener(SOCK_TYPES[sock_type])
        else:
            endpoint = endpoint_from_options(host, port, unix)
        if (allow_uid is not None or allow_gid is not None) and not endpoint.is_unix:
            raise click.UsageError("--allow-uid/--allow-gid need a UNIX listener")
        config = ServerConfig(
            endpoint=endpoint,
            mode=mode,
            max_conns=max_conns,
            idle_timeout=idle_timeout,
            drain_timeout=drain_timeout,
            read_size=read_size,
            high_water=high_water,
            low_water=low_water,
            backlog=backlog,
            unix_mode=_parse_mode(unix_mode),
            sendfile=not no_sendfile,
            sndbuf=sndbuf,
            http=http,
            sock_type=SOCK_TYPES[sock_type],
            allow_uids=_parse_ids(allow_uid, "uid"),
            allow_gids=_parse_ids(allow_gid, "gid"),
            uring_pool=uring_pool,
            uring_large=not uring_no_large,
        )
        if workers > 1:
            from fastsock.workers import serve_workers

            def announce(where: str) -> None:
                click.echo(f"fastsock: listening on {where}")
                sys.stdout.flush()

            raise SystemExit(serve_workers(config, workers, announce, sock))
        # systemd made the socket file and removes it: it is not ours to delete.
        server = make_server(config, engine, sock, owns_unix_file=sock is None)
    except (EndpointError, click.BadParameter, OSError, EngineUnavailable) as err:
        click.echo(
            f"fastsock: {err.format_message() if hasattr(err, 'format_message') else err}", err=True
        )
        raise SystemExit(2) from None
    # We exit when the loop is done: a late SIGTERM/SIGINT must not turn exit 0 into death by
    # signal, so the loop leaves them ignored rather than back at their default action.
    server.install_signal_handlers(ignore_after=True)
    click.echo(f"fastsock: listening on {endpoint_text(server.endpoint, config.sock_type)}")
    sys.stdout.flush()
    try:
        server.run()
    finally:
        server.print_stats()
