"""What a load run does: the parameters, their limits, and message-size parsing."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastsock.address import Endpoint

MIN_SIZE = 1
MAX_SIZE = 16 * 1024 * 1024
MAX_CONNS = 10_000
MAX_DEPTH = 1024
MAX_PROCS = 64
WORKLOADS = ("echo", "send", "recv")

_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kKmMgG](?:i?[bB])?|[bB])?\s*$")
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


class ConfigError(ValueError):
    """A parameter is out of range or parameters contradict each other; one-line message."""


def parse_size(text: str | int) -> int:
    """Bytes from ``64``, ``64B``, ``4K``/``4KiB``/``4KB``, ``1M``/``1MiB``: suffixes are binary
    (K = 1024) because message sizes here are buffer sizes, not marketing figures."""
    if isinstance(text, int):
        return text
    match = _SIZE_RE.match(text)
    if not match:
        raise ConfigError(f"size {text!r} is not a number of bytes like 64, 4K, 1MiB")
    unit = (match.group(2) or "")[:1].lower()
    return int(match.group(1)) * _UNITS[unit]


def format_size(size: int) -> str:
    """``65536`` -> ``64KiB``; the short name charts and summaries use."""
    for unit, factor in (("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"


@dataclass(frozen=True)
class LoadConfig:
    """One load run. ``rate`` set means open loop (messages/s in total over all connections and
    processes, on a fixed schedule); ``rate=None`` means closed loop with ``depth`` messages in
    flight per connection."""

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

    @property
    def loop(self) -> str:
        return "closed" if self.rate is None else "open"

    def validate(self) -> LoadConfig:
        """Raise :class:`ConfigError` for nonsense; return self so calls chain."""
        if not MIN_SIZE <= self.size <= MAX_SIZE:
            raise ConfigError(f"--size must be 1 B to 16 MiB, not {self.size}")
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
        if self.connect_timeout <= 0:
            raise ConfigError("connect timeout must be > 0")
        return self

    def params(self) -> dict:
        """The ``params`` object of the JSON result."""
        return {
            "endpoint": str(self.endpoint),
            "transport": self.endpoint.transport,
            "workload": self.workload,
            "size": self.size,
            "conns": self.conns,
            "depth": self.depth,
            "duration": self.duration,
            "warmup": self.warmup,
            "rate": self.rate,
            "loop": self.loop,
            "procs": self.procs,
        }
