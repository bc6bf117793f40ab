"""Throw-away Redis and PostgreSQL instances: a temp dir each, a free TCP port on 127.0.0.1 and a
UNIX socket at once, ready when both accept (nothing sleeps and hopes), stopped by PID.

Neither prints a ready line fastsock's :class:`~fastsock.process.ServerProcess` could wait
for, so readiness is checked by connecting: Redis must answer PING on both listeners;
PostgreSQL must accept on both and say ``ready`` in its ``postmaster.pid``. The system services
the packages install are never touched.

PostgreSQL refuses to run as root: as root, ``initdb`` and ``postgres`` run as the unprivileged
``postgres`` user the Debian package creates (``Popen(user=...)``, so the PID we hold is the
postmaster's own), and the temp dir is handed to that user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from bench.http.nginx import free_port

READY_TIMEOUT_S = 30.0
PG_USER = "postgres"


class AppError(RuntimeError):
    """A server could not be set up or started (the message says why, in one line)."""


def _wait_until(check, what: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip()[-400:] if log.exists() else ""
            raise AppError(f"{what} exited with {proc.returncode}: {tail}")
        if time.monotonic() > deadline:
            raise AppError(f"{what} was not ready within {timeout:.0f}s")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen, sig: int, timeout: float = 15.0) -> None:
    """``sig`` to the PID we started, then SIGKILL after ``timeout``."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _exchange(family: int, address: object, request: bytes, expect: bytes) -> bool:
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            s.connect(address)
            if request:
                s.sendall(request)
                return s.recv(64).startswith(expect)
            return True
    except OSError:
        return False


# -- Redis ------------------------------------------------------------------------------------
def redis_binaries() -> tuple[str, str] | None:
    """(redis-server, redis-benchmark), or None when either is missing."""
    server, bench = shutil.which("redis-server"), shutil.which("redis-benchmark")
    return (server, bench) if server and bench else None


class RedisServer:
    """redis-server without persistence (no RDB, no AOF): a cache in memory, as it is measured.

    ``host`` lets it listen elsewhere than 127.0.0.1 (the veth path, inside a namespace:
    ``prefix`` is then ``ip netns exec NAME``).
    """

    def __init__(self, host: str = "127.0.0.1", prefix: tuple[str, ...] = ()) -> None:
        found = redis_binaries()
        if found is None:
            raise AppError("redis-server/redis-benchmark not installed (apt-get install redis)")
        self.workdir = Path(tempfile.mkdtemp(prefix="fastsock-redis-"))
        self.unix_path = str(self.workdir / "redis.sock")
        self.host = host
        self.port = free_port()
        self.log = self.workdir / "redis.log"
        argv = [
            *prefix,
            found[0],
            "--port", str(self.port), "--bind", host, "--protected-mode", "no",
            "--unixsocket", self.unix_path, "--unixsocketperm", "700",
            "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--dir", str(self.workdir), "--logfile", str(self.log),
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.pid = self.proc.pid
        self._ns = prefix
        try:
            _wait_until(self._ready, "redis-server", self.proc, self.log, READY_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        ping = b"PING\r\n"
        unix_ok = _exchange(socket.AF_UNIX, self.unix_path, ping, b"+PONG")
        # In another namespace its TCP address is out of our reach; Redis opens every listener
        # before it serves any, so the UNIX socket's PONG covers TCP too.
        if self._ns:
            return unix_ok
        return unix_ok and _exchange(socket.AF_INET, (self.host, self.port), ping, b"+PONG")

    def stop(self) -> None:
        _stop(self.proc, signal.SIGTERM)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- PostgreSQL -------------------------------------------------------------------------------
def pg_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/N/bin`` with initdb, postgres and pgbench (Debian keeps
    them off PATH), else a PATH that has all three, else None."""
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        if all(os.access(os.path.join(d, b), os.X_OK) for b in ("initdb", "postgres", "pgbench")):
            return Path(d)
    found = [shutil.which(b) for b in ("initdb", "postgres", "pgbench")]
    return Path(found[0]).parent if all(found) else None


def _version_key(path: str) -> int:
    part = Path(path).parent.name
    return int(part) if part.isdigit() else 0


def _pg_identity() -> tuple[str | None, int, int]:
    """(user to run as or None for ourselves, uid, gid)."""
    if os.geteuid() != 0:
        return None, os.getuid(), os.getgid()
    try:
        pw = pwd.getpwnam(PG_USER)
    except KeyError:
        raise AppError(
            f"running as root and there is no {PG_USER!r} user to run PostgreSQL"
        ) from None
    return PG_USER, pw.pw_uid, pw.pw_gid


class PostgresCluster:
    """A throw-away cluster: ``initdb`` into a temp dir, ``fsync=off``, trust authentication,
    listening on 127.0.0.1 and a socket directory; ``pgbench -i`` tables at ``scale``."""

    def __init__(self, scale: int = 1) -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise AppError(
                "PostgreSQL (initdb, postgres, pgbench) not installed (apt-get install postgresql)"
            )
        self.bindir = bindir
        self.user, uid, gid = _pg_identity()
        self.workdir = Path(tempfile.mkdtemp(prefix="fastsock-pg-"))
        os.chown(self.workdir, uid, gid)
        self.datadir = self.workdir / "data"
        self.sockdir = str(self.workdir)
        self.port = free_port()
        self.log = self.workdir / "postgres.log"
        self.proc: subprocess.Popen | None = None
        try:
            self._initdb()
            self._start()
            self.pgbench_init(scale)
        except BaseException:
            self.stop()
            raise

    def _as_user(self) -> dict:
        return {"user": self.user, "group": PG_USER, "extra_groups": []} if self.user else {}

    def _initdb(self) -> None:
        argv = [str(self.bindir / "initdb"), "-D", str(self.datadir), "--auth=trust",
                "-U", PG_USER, "--no-sync", "-E", "UTF8", "--locale=C"]  # fmt: skip
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=120, cwd=self.workdir, **self._as_user()
        )
        if result.returncode != 0:
            raise AppError(f"initdb failed: {result.stderr.strip()[-300:]}")

    def _start(self) -> None:
        argv = [
            str(self.bindir / "postgres"), "-D", str(self.datadir), "-p", str(self.port),
            "-k", self.sockdir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
            "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=50",
        ]  # fmt: skip
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.workdir,
                **self._as_user(),
            )
        self.pid = self.proc.pid
        _wait_until(self._ready, "postgres", self.proc, self.log, READY_TIMEOUT_S)

    def _ready(self) -> bool:
        try:
            lines = (self.datadir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        # Line 8 of postmaster.pid is the postmaster's state; "ready" once it accepts queries.
        if len(lines) < 8 or lines[7].strip() != "ready":
            return False
        sock = os.path.join(self.sockdir, f".s.PGSQL.{self.port}")
        return _exchange(socket.AF_UNIX, sock, b"", b"") and _exchange(
            socket.AF_INET, ("127.0.0.1", self.port), b"", b""
        )

    def pgbench_argv(self, host: str) -> list[str]:
        """pgbench up to its run options, connecting to ``host`` (a socket dir or an address)."""
        return [str(self.bindir / "pgbench"), "-h", host, "-p", str(self.port), "-U", PG_USER]

    def pgbench_init(self, scale: int) -> None:
        argv = [*self.pgbench_argv(self.sockdir), "-i", "-q", "-s", str(scale), PG_USER]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise AppError(f"pgbench -i failed: {result.stderr.strip()[-300:]}")

    def stop(self) -> None:
        """Fast shutdown (SIGINT: roll back, disconnect, exit), SIGKILL after 15 s."""
        if self.proc is not None:
            _stop(self.proc, signal.SIGINT)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
