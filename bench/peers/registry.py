"""Every server the harness compares, as data, and how to start each one for an endpoint.

All of them take ``--host H --port N`` or ``--unix PATH`` and ``--mode``, print one ready line
``NAME: listening on ENDPOINT`` and exit 0 on SIGTERM, so the harness starts every one through
:class:`fastsock.process.ServerProcess` the same way::

    peer = PEERS["c-epoll"]
    with ServerProcess(peer.argv(unix_endpoint(path)), env=peer_env()) as server: ...

``python -m bench.peers.registry`` (``make peers``) builds the C programs and prints which peers
are available, and why the others are not.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fastsock.address import Endpoint

PEERS_DIR = Path(__file__).resolve().parent
REPO_ROOT = PEERS_DIR.parent.parent
C_DIR = PEERS_DIR / "c"
BIN_DIR = PEERS_DIR / "bin"
# The native load engine of fastsock load: load_client is a main() over its loop.
NATIVE_DIR = REPO_ROOT / "fastsock" / "native"
CFLAGS = ("-O2", "-Wall", "-Wextra", f"-I{NATIVE_DIR}")

# C programs: binary name -> its sources, relative to C_DIR or absolute (the .c files are
# compiled together; headers only trigger rebuilds).
C_PROGRAMS: dict[str, tuple[str | Path, ...]] = {
    "echo_server": ("echo_server.c", "common.h", "server.h"),
    "uring_echo_server": ("uring_echo_server.c", "common.h", "server.h"),
    "load_client": (
        "load_client.c",
        "common.h",
        NATIVE_DIR / "loadcore.c",
        NATIVE_DIR / "loadcore.h",
    ),
}
LOAD_CLIENT = BIN_DIR / "load_client"


@dataclass(frozen=True)
class Peer:
    """One server: how to start it, and what it needs to exist.

    ``command`` is argv up to the endpoint options; ``needs_module`` is a Python module that
    must import (uvloop); ``needs_binary`` a C program from :data:`C_PROGRAMS`; ``needs_uring``
    an io_uring the engine can use.
    """

    name: str
    description: str
    command: tuple[str, ...]
    modes: tuple[str, ...] = ("echo", "discard")
    needs_module: str | None = None
    needs_binary: str | None = None
    # Needs io_uring (fastsock serve --engine uring): the engine's own probe says why not.
    needs_uring: bool = False

    def argv(self, endpoint: Endpoint, mode: str = "echo") -> list[str]:
        """The command line that serves ``mode`` on ``endpoint`` (port 0 picks a free port)."""
        if mode not in self.modes:
            raise ValueError(f"peer {self.name} has no mode {mode!r}")
        if endpoint.is_unix:
            where = ["--unix", endpoint.path]
        else:
            where = ["--host", endpoint.host, "--port", str(endpoint.port)]
        return [*self.command, *where, "--mode", mode]


def _python(module: str) -> tuple[str, ...]:
    return (sys.executable, "-m", module)


PEER_LIST: tuple[Peer, ...] = (
    Peer(
        "fastsock",
        "fastsock serve: selectors, recv_into a preallocated buffer, optimistic writes",
        # All features on, as a user would run it: the idle timeout's sweep timer included.
        (sys.executable, "-m", "fastsock", "serve", "--idle-timeout", "300"),
        modes=("echo", "discard", "source"),
    ),
    # The A/A check (issue 22): a second, identical fastsock server, compared with the first
    # like any other pair. The harness must not find a difference between them.
    Peer(
        "fastsock-twin",
        "a second fastsock serve, identical to fastsock: the harness's A/A false-alarm check",
        (sys.executable, "-m", "fastsock", "serve", "--idle-timeout", "300"),
        modes=("echo", "discard", "source"),
    ),
    Peer(
        "fastsock-uring",
        "fastsock serve --engine uring: io_uring, a shared receive pool, linked SEND->RECV",
        (sys.executable, "-m", "fastsock", "serve", "--engine", "uring", "--idle-timeout", "300"),
        modes=("echo", "discard", "source"),
        needs_uring=True,
    ),
    Peer(
        "asyncio-protocol",
        "asyncio Protocol: data_received -> transport.write",
        _python("bench.peers.asyncio_protocol"),
    ),
    Peer(
        "asyncio-streams",
        "asyncio streams: reader.read(65536) -> writer.write + drain",
        _python("bench.peers.asyncio_streams"),
    ),
    Peer(
        "uvloop-protocol",
        "the asyncio Protocol on uvloop",
        _python("bench.peers.uvloop_protocol"),
        needs_module="uvloop",
    ),
    Peer(
        "bare-epoll",
        "40 lines of Python: epoll, dict fd -> method, recv_into + send (no features)",
        _python("bench.peers.bare_epoll"),
    ),
    Peer(
        "busy-epoll",
        "the bare loop plus 50 us of CPU per 64 B read: slower than either load engine",
        (*_python("bench.peers.bare_epoll"), "--busy-us", "50"),
    ),
    Peer(
        "threaded",
        "socketserver: a thread per connection, blocking recv_into + sendall",
        _python("bench.peers.threaded"),
    ),
    Peer(
        "c-epoll",
        "C, one thread, level-triggered epoll, 64 KiB buffer per connection",
        (str(BIN_DIR / "echo_server"),),
        needs_binary="echo_server",
    ),
    Peer(
        "c-uring",
        "C, fastsock's io_uring design: a linked SEND->RECV pair per echo, 256 KiB buffers",
        (str(BIN_DIR / "uring_echo_server"),),
        needs_binary="uring_echo_server",
        needs_uring=True,
    ),
)
PEERS: dict[str, Peer] = {peer.name: peer for peer in PEER_LIST}


def peer_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment to start peers with: ``bench`` is not an installed package, so the repo
    root goes on PYTHONPATH and ``python -m bench.peers.X`` works from any directory."""
    env = dict(os.environ if base is None else base)
    parts = [str(REPO_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    return env


def _stale(binary: Path, sources: Sequence[Path]) -> bool:
    if not binary.exists():
        return True
    built = binary.stat().st_mtime_ns
    return any(src.stat().st_mtime_ns > built for src in sources)


def _compile(name: str, sources: Sequence[Path], cc: str) -> str | None:
    """Compile one program; None on success, else the compiler's first error line."""
    BIN_DIR.mkdir(parents=True, exist_ok=True)
    # Build to a temporary name and rename: a concurrent build or a running peer never sees a
    # half-written binary.
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=BIN_DIR)
    os.close(fd)
    try:
        result = subprocess.run(
            [cc, *CFLAGS, "-o", tmp, *(str(s) for s in sources if s.suffix == ".c")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            lines = [line for line in result.stderr.splitlines() if "error" in line]
            return f"{cc} failed on {sources[0].name}: " + (
                lines[0] if lines else result.stderr.strip()[:200]
            )
        os.chmod(tmp, 0o755)
        os.replace(tmp, BIN_DIR / name)
        return None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def build_c_peers(cc: str | None = None) -> dict[str, str | None]:
    """Compile the C programs into ``bench/peers/bin/`` when their sources are newer.

    Returns program name -> None when the binary is ready, or the reason it is not (no C
    compiler, a compile error). Without a compiler, binaries built earlier still count.
    """
    compiler = cc or os.environ.get("CC") or "cc"
    compiler_path = shutil.which(compiler)
    status: dict[str, str | None] = {}
    for name, files in C_PROGRAMS.items():
        sources = [C_DIR / f for f in files]
        binary = BIN_DIR / name
        if not _stale(binary, sources):
            status[name] = None
        elif compiler_path is None:
            status[name] = f"no C compiler ({compiler} not found on PATH)"
        else:
            status[name] = _compile(name, sources, compiler_path)
    return status


def _uring_unavailable() -> str | None:
    from fastsock.uring.ring import UringUnavailable, probe

    try:
        probe()
    except UringUnavailable as err:
        return str(err)
    return None


def available_peers(build: bool = True) -> dict[str, str | None]:
    """Peer name -> None if it can run here, else a one-line reason to skip it.

    ``build`` compiles the C peers first (only what is out of date).
    """
    if build:
        binaries = build_c_peers()
    else:
        binaries = {
            name: None if (BIN_DIR / name).exists() else "not built (make peers)"
            for name in C_PROGRAMS
        }
    status: dict[str, str | None] = {}
    for peer in PEER_LIST:
        reason = None
        if peer.needs_module and importlib.util.find_spec(peer.needs_module) is None:
            reason = f"Python module {peer.needs_module} is not installed"
        elif peer.needs_binary and binaries.get(peer.needs_binary):
            reason = binaries[peer.needs_binary]
        elif peer.needs_uring:
            reason = _uring_unavailable()
        status[peer.name] = reason
    return status


def main() -> int:
    """Build the C programs and print every peer's availability; 1 if a compile failed."""
    built = build_c_peers()
    for name, reason in built.items():
        print(f"{name:18} {'built: ' + str(BIN_DIR / name) if reason is None else reason}")
    for name, reason in available_peers(build=False).items():
        print(f"{name:18} {'available' if reason is None else 'unavailable: ' + reason}")
    have_cc = shutil.which(os.environ.get("CC") or "cc") is not None
    return 1 if have_cc and any(built.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
