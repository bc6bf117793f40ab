"""The server's counters and the stats line it prints on exit (one module both the server and
its connections update, so neither imports the other for it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ServerStats:
    accepted: int = 0
    rejected: int = 0  # over --max-conns: accepted and closed at once
    closed: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    resets: int = 0
    errors: int = 0
    idle_closed: int = 0
    accept_errors: int = 0
    read_pauses: int = 0
    peak_conns: int = 0
    peak_buffered: int = 0  # the most bytes one connection ever had queued

    def line(self) -> str:
        fields = " ".join(f"{k}={v}" for k, v in self.__dict__.items())
        return f"fastsock: stats {fields}"
