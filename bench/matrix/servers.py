"""Start the servers an experiment needs, once, and keep them up while its variants interleave.

Starting a Python server costs a few hundred milliseconds; starting one per run would cost more
than the quick matrix's budget. An idle server sits in epoll_wait/accept and uses no CPU, so the
servers of one experiment run side by side and each load run talks to one of them. Every server
is stopped by PID when the pool closes, also on errors and Ctrl-C.

A stream server is warmed up once when it starts (``bench.peers.warm``): without that, the first
run against a fresh asyncio server measured 4-5x fewer msgs/s than every later one (issue 11).
"""

from __future__ import annotations

import socket
from pathlib import Path

from bench.matrix.plan import SOCKET_TYPES
from bench.peers.registry import PEERS, peer_env
from bench.peers.warm import warm_up
from fastsock.address import Endpoint, tcp_endpoint, unix_endpoint
from fastsock.process import ServerProcess, ServerStartError

HOSTS = {"tcp": "127.0.0.1", "tcp6": "::1", "udp": "127.0.0.1"}


def tcp6_available() -> str | None:
    """None when ::1 can be bound here, else why not (IPv6 disabled in containers is common)."""
    if not socket.has_ipv6:
        return "Python was built without IPv6"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError as err:
        return f"cannot bind ::1: {err.strerror or err}"
    return None


class ServerPool:
    """Servers keyed by (name, transport, pinned CPUs); use as a context manager."""

    def __init__(self, sock_dir: Path) -> None:
        self.sock_dir = sock_dir
        self._servers: dict[tuple, ServerProcess] = {}
        self._count = 0
        self.notes: list[str] = []
        # Counts restart(): which set of server instances a run talked to.
        self.generation = 0

    def _endpoint(self, name: str, transport: str) -> Endpoint:
        if transport.startswith("unix"):
            self._count += 1
            return unix_endpoint(str(self.sock_dir / f"{name}-{self._count}.sock"))
        return tcp_endpoint(HOSTS[transport], 0)

    def get(self, name: str, transport: str, cpus: frozenset[int] | None) -> ServerProcess:
        """The running server for this key; started (or restarted after a crash) on demand.

        Raises ``fastsock.process.ServerStartError`` when it cannot start.
        """
        key = (name, transport, cpus)
        server = self._servers.get(key)
        if server is not None and not server.alive():
            code = server.stop(timeout=2)
            last = server.stderr_text.strip().splitlines()[-1:] or ["no stderr"]
            self.notes.append(f"{name} ({transport}) exited with {code} mid-run: {last[0]}")
            del self._servers[key]
            server = None
        if server is None:
            argv = PEERS[name].argv(self._endpoint(name, transport), "echo")
            if SOCKET_TYPES[transport] != "stream":  # the matrix allows this for fastsock only
                argv += ["--type", SOCKET_TYPES[transport]]
            server = ServerProcess(
                argv,
                env=peer_env(),
                cpu_affinity=set(cpus) if cpus else None,
                ready_timeout=20.0,
            )
            if SOCKET_TYPES[transport] == "stream":
                try:
                    warm_up(server.endpoint)
                except (OSError, RuntimeError) as err:
                    server.kill()
                    raise ServerStartError(f"{name} ({transport}): warm-up failed: {err}") from err
            self._servers[key] = server
        return server

    def restart(self) -> None:
        """Stop every server; the next ``get`` of each starts (and warms up) a new instance."""
        self.close()
        self.generation += 1

    def close(self) -> None:
        """Stop every server by PID (SIGTERM, then SIGKILL after a grace period)."""
        while self._servers:
            _, server = self._servers.popitem()
            try:
                server.stop(timeout=5)
            except Exception:  # noqa: BLE001 - keep stopping the others whatever happens
                server.kill()

    def __enter__(self) -> ServerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
