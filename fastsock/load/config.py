"""What a load run does: the parameters and their limits."""

from __future__ import annotations

from dataclasses import dataclass

from fastsock.address import SOCK_TYPES, Endpoint, endpoint_text
from fastsock.load import limits
from fastsock.load.http import path_problem
from fastsock.units import format_size, parse_size

MIN_SIZE = 1
MAX_SIZE = 16 * 1024 * 1024
MAX_CONNS = 10_000
MAX_DEPTH = 1024
MAX_PROCS = 64
MAX_VERIFY_EVERY = 1_000_000
NATIVE_RX = 256 * 1024  # fastsock/native/loadcore.c's RX_CAP: the most one native recv reads
WORKLOADS = ("echo", "send", "recv", "http")
ENGINES = ("auto", "native", "python")

__all__ = ["ConfigError", "LoadConfig", "format_size", "parse_size"]


class ConfigError(ValueError):
    """A parameter is out of range or parameters contradict each other; one-line message."""


@dataclass(frozen=True)
class LoadConfig:
    """One load run. ``rate`` set means open loop (messages/s in total over all connections and
    processes, on a fixed schedule); ``rate=None`` means closed loop with ``depth`` messages in
    flight per connection.

    ``workload="http"`` GETs ``path`` (a URL path) over keep-alive connections; ``depth`` is
    requests pipelined per connection, and ``size`` is not a parameter: :func:`run_load` sets it
    to the body length the probe finds. ``verify_every=k`` checksums every k-th body only."""

    endpoint: Endpoint
    size: int = 64
    conns: int = 32
    duration: float = 5.0
    warmup: float = 0.5
    depth: int = 1
    rate: float | None = None
    procs: int = 1
    workload: str = "echo"
    server_pid: int | None = None
    progress: bool = False
    connect_timeout: float = 10.0
    command_line: str | None = None
    path: str | None = None
    verify_every: int = 1
    engine: str = "auto"  # run_load replaces auto with the engine that runs
    # --type: stream (TCP/UNIX), seqpacket (UNIX; the stream engine over message sockets) or
    # dgram (UDP/UNIX; fastsock/load/datagram.py, loss counted).
    sock_type: str = "stream"

    @property
    def socket_type(self) -> int:
        """``sock_type`` as the socket module's constant."""
        return SOCK_TYPES[self.sock_type]

    @property
    def loop(self) -> str:
        return "closed" if self.rate is None else "open"

    def validate(self) -> LoadConfig:
        """Raise :class:`ConfigError` for nonsense; return self so calls chain."""
        if self.workload == "http":
            self._validate_http()
        elif not MIN_SIZE <= self.size <= MAX_SIZE:
            raise ConfigError(f"--size must be 1 B to 16 MiB, not {self.size}")
        elif self.path is not None:
            raise ConfigError(f"--http PATH makes the workload http, not {self.workload}")
        elif self.verify_every != 1:
            raise ConfigError("--verify-every is for --http")
        if not 1 <= self.conns <= MAX_CONNS:
            raise ConfigError(f"--conns must be 1 to {MAX_CONNS}, not {self.conns}")
        if not 0 < self.duration <= 24 * 3600:
            raise ConfigError(f"--duration must be > 0 s and at most a day, not {self.duration}")
        if not 0 <= self.warmup <= 3600:
            raise ConfigError(f"--warmup must be 0 to 3600 s, not {self.warmup}")
        if not 1 <= self.depth <= MAX_DEPTH:
            raise ConfigError(f"--depth must be 1 to {MAX_DEPTH}, not {self.depth}")
        if not 1 <= self.procs <= MAX_PROCS:
            raise ConfigError(f"--procs must be 1 to {MAX_PROCS}, not {self.procs}")
        if self.procs > self.conns:
            raise ConfigError(f"--procs {self.procs} needs at least as many --conns")
        if self.workload not in WORKLOADS:
            raise ConfigError(f"--workload must be one of {', '.join(WORKLOADS)}")
        if self.rate is not None:
            if not 0 < self.rate <= 10_000_000:
                raise ConfigError(f"--rate must be > 0 and at most 1e7 msgs/s, not {self.rate}")
            if self.depth != 1:
                raise ConfigError(
                    "--depth is for the closed loop; with --rate the schedule decides how many "
                    "messages are in flight"
                )
            if self.workload == "recv":
                raise ConfigError("--rate makes no sense with --workload recv: the server sends")
        if self.engine not in ENGINES:
            raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}")
        if self.engine == "native" and self.workload == "http":
            raise ConfigError("--engine native has no http workload; use --engine python")
        if self.engine == "native" and self.sock_type == "dgram":
            raise ConfigError("--engine native is for streams and seqpacket, not dgram")
        if self.engine == "native" and self.sock_type == "seqpacket" and self.size > NATIVE_RX:
            # One native recv reads at most 256 KiB; a longer message would be cut (MSG_TRUNC).
            raise ConfigError("--engine native takes seqpacket messages of up to 256 KiB")
        if self.connect_timeout <= 0:
            raise ConfigError("connect timeout must be > 0")
        if self.sock_type != "stream":
            self._validate_type()
        return self

    def _validate_type(self) -> None:
        if self.sock_type not in ("seqpacket", "dgram"):
            raise ConfigError(f"--type must be stream, seqpacket or dgram, not {self.sock_type}")
        if self.sock_type == "seqpacket" and not self.endpoint.is_unix:
            raise ConfigError("--type seqpacket needs a UNIX socket (--unix PATH)")
        if self.sock_type == "seqpacket" and self.workload not in ("echo", "recv"):
            raise ConfigError(f"--type seqpacket serves echo and recv, not {self.workload}")
        if self.sock_type == "seqpacket":
            limit = limits.max_size(self.endpoint, SOCK_TYPES["seqpacket"])
            if self.size > limit:
                raise ConfigError(
                    f"--size {self.size} does not fit one message: up to {limit} B, what a "
                    "UNIX seqpacket socket's send buffer takes here (SO_SNDBUF, capped by "
                    "net.core.wmem_max); the server's --read-size must hold it too"
                )
            return
        if self.workload != "echo":
            raise ConfigError(f"--type dgram measures echo, not {self.workload}")
        if self.procs != 1:
            raise ConfigError("--type dgram runs in one process (--procs 1)")
        limit = limits.max_size(self.endpoint)
        if not limits.MIN_SIZE <= self.size <= limit:
            what = (
                "UDP's limit"
                if not self.endpoint.is_unix
                else "what a UNIX datagram socket's send buffer takes here "
                "(SO_SNDBUF, capped by net.core.wmem_max)"
            )
            raise ConfigError(
                f"--size {self.size} does not fit one datagram: {limits.MIN_SIZE} B (the sequence "
                f"header) to {limit} B, {what}"
            )

    def _validate_http(self) -> None:
        if self.path is None:
            raise ConfigError("--workload http needs --http PATH (the URL path to GET)")
        problem = path_problem(self.path)
        if problem:
            raise ConfigError(problem)
        if not 1 <= self.verify_every <= MAX_VERIFY_EVERY:
            raise ConfigError(
                f"--verify-every must be 1 to {MAX_VERIFY_EVERY}, not {self.verify_every}"
            )

    def params(self) -> dict:
        """The ``params`` object of the JSON result (``path`` and ``verify_every`` only for
        http, whose ``size`` is the body length)."""
        transport = self.endpoint.transport
        if self.sock_type == "dgram" and not self.endpoint.is_unix:
            transport = transport.replace("tcp", "udp")
        params = {
            "endpoint": endpoint_text(self.endpoint, self.socket_type),
            "transport": transport,
            "workload": self.workload,
            "size": self.size,
            "conns": self.conns,
            "depth": self.depth,
            "duration": self.duration,
            "warmup": self.warmup,
            "rate": self.rate,
            "loop": self.loop,
            "procs": self.procs,
            "engine": self.engine,
        }
        if self.workload == "http":
            params["path"] = self.path
            params["verify_every"] = self.verify_every
        if self.sock_type != "stream":
            params["type"] = self.sock_type
        return params
