"""The server's counters and the stats line it prints on exit (one module both the server and
its connections update, so neither imports the other for it)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

# Counters only a datagram server (--type dgram) has: its stats line carries them, others not.
DATAGRAM_FIELDS = ("datagrams_in", "datagrams_out", "unreplyable", "send_waits", "truncated")


@dataclass
class ServerStats:
    accepted: int = 0
    rejected: int = 0  # over --max-conns: accepted and closed at once
    rejected_peer: int = 0  # not in --allow-uid/--allow-gid: accepted and closed at once
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
    # --type dgram only (see DATAGRAM_FIELDS):
    datagrams_in: int = 0
    datagrams_out: int = 0
    unreplyable: int = 0  # an unnamed UNIX sender, or one gone: there is no address to answer
    send_waits: int = 0  # replies that found no room at once and waited (never dropped)
    truncated: int = 0  # longer than the read buffer: cut by the kernel, so not answered
    # --engine uring with its shared receive pool only: RECVs that found the pool dry
    # (ENOBUFS); each waited for a buffer to come back.
    enobufs: int = 0
    datagram: bool = field(default=False, repr=False)
    pool: bool = field(default=False, repr=False)

    def line(self) -> str:
        names = [f.name for f in fields(self) if f.name not in ("datagram", "pool")]
        if not self.datagram:
            names = [n for n in names if n not in DATAGRAM_FIELDS]
        if not self.pool:
            names = [n for n in names if n != "enobufs"]
        text = " ".join(f"{n}={getattr(self, n)}" for n in names)
        return f"fastsock: stats {text}"
