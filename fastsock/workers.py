"""``fastsock serve --workers N``: N single-threaded servers sharing one listening socket.

The parent binds and listens (so a start-up error is reported once, and ``--port 0`` yields one
port), forks the workers, waits until every one of them is ready, and prints the ready line. Each
worker runs its own event loop on the inherited listener; the kernel hands every new connection to
one of them (the others' accept() gets EAGAIN). The parent only supervises: SIGTERM/SIGINT are
forwarded to the workers as SIGTERM (each drains and prints its own stats line, tagged
``worker=I``), the parent waits for all of them, removes the UNIX socket file, and exits 0 if
every worker did.

Start-up without a lost signal: the parent blocks SIGTERM/SIGINT before it forks, so a signal
that arrives while the workers start stays *pending* instead of running a default action. A child
inherits the blocked mask; it installs its handlers, says "ready" over a pipe and only then
unblocks, so a pending SIGTERM reaches its drain handler. The parent announces after every worker
said ready, then unblocks and forwards whatever arrived meanwhile. Without this a SIGTERM sent
right after the ready line killed a worker that had not yet installed its handler (exit 1).

A worker gets SIGTERM when its parent dies (PR_SET_PDEATHSIG), so a SIGKILLed parent's workers
drain and exit instead of serving on: the socket file they leave is stale, and the next server on
that path replaces it.

Workers ignore SIGINT: a Ctrl-C reaches the whole process group, and the parent forwards it
once as SIGTERM -- a second signal would make a draining worker close its connections at once.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable

from fastsock.address import (
    bound_endpoint,
    endpoint_text,
    listen,
    remove_unix_file,
    unix_file_identity,
)
from fastsock.server import Server, ServerConfig

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# A worker that has not said ready by then is taken as failed (it imports nothing new and binds
# nothing, so a healthy one is ready within milliseconds even on a loaded machine).
READY_TIMEOUT_S = 30.0


def serve_workers(
    config: ServerConfig,
    workers: int,
    announce: Callable[[str], None],
    sock: socket.socket | None = None,
) -> int:
    """Run ``workers`` servers on one listener; returns the exit status for the parent.

    ``announce(endpoint_text)`` prints the ready line once every worker has its signal handlers
    in place. Start-up errors raise :class:`fastsock.address.EndpointError` before anything is
    forked; a worker that fails to start makes the parent stop the others and return 1.
    ``sock``: a listener made elsewhere (systemd's); its socket file is then not ours to remove.
    """
    owned = sock is None
    if sock is None:
        sock = listen(config.endpoint, config.backlog, config.unix_mode, config.sock_type)
    endpoint = bound_endpoint(sock, config.endpoint)
    identity = None
    if owned and endpoint.is_unix and not endpoint.is_abstract:
        identity = unix_file_identity(endpoint.path)
    pids: list[int] = []

    def forward(signum: int = signal.SIGTERM, frame: object = None) -> None:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    sys.stdout.flush()
    sys.stderr.flush()
    ready_r, ready_w = os.pipe()
    parent = os.getpid()
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        for index in range(workers):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child, which os._exit()s
                os.close(ready_r)
                os._exit(_worker(config, sock, index, ready_w, old_mask, parent))
            pids.append(pid)
        sock.close()  # the parent never accepts
        os.close(ready_w)
        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        try:
            ready = _count_ready(ready_r, workers)
        finally:
            os.close(ready_r)
        if ready == workers:
            announce(endpoint_text(endpoint, config.sock_type))
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)  # pending signals are forwarded now
    status = 0
    if ready < workers:
        print(f"fastsock: {workers - ready} of {workers} workers failed to start", file=sys.stderr)
        forward()
        status = 1
    for pid in pids:
        _, code = os.waitpid(pid, 0)  # retried after our signal handler runs (PEP 475)
        if os.waitstatus_to_exitcode(code) != 0:
            status = 1
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if identity is not None:
        remove_unix_file(endpoint.path, identity)
    return status


def _count_ready(ready_r: int, workers: int) -> int:
    """Read one byte per ready worker until every write end is closed (each worker closes its own
    after writing, or by exiting) or the time is up.

    It waits for the end of the pipe, not just for N bytes: a worker closes its end right after
    its byte, and the ready line should find every process with the descriptors it will serve
    with (a test counts them to tell when a client's connections have arrived)."""
    ready = 0
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([ready_r], [], [], left)[0]:
            break
        chunk = os.read(ready_r, workers)
        if not chunk:
            break
        ready += len(chunk)
    return min(ready, workers)


def _die_with(parent: int) -> bool:
    """Ask the kernel for SIGTERM when our parent dies (PR_SET_PDEATHSIG); False if it is dead
    already. Without it a SIGKILLed parent left its workers serving on a socket file nobody
    would remove, and the next server on that path found it in use."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    return os.getppid() == parent  # the parent may have died before prctl()


def _worker(  # pragma: no cover - child side
    config: ServerConfig,
    sock: socket.socket,
    index: int,
    ready_w: int,
    unblock: set[int],
    parent: int,
) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not _die_with(parent):
        return 1
    try:
        server = Server(config, sock=sock, owns_unix_file=False)
        # ignore_after: a second SIGTERM (the parent forwards each one it gets) arriving after
        # the loop is done must not kill us with the default action before we print stats.
        server.install_signal_handlers((signal.SIGTERM,), ignore_after=True)
        os.write(ready_w, b"r")
        os.close(ready_w)
        # Handlers are in place: a SIGTERM that arrived during start-up is delivered now and
        # starts the drain as soon as the loop runs.
        signal.pthread_sigmask(signal.SIG_SETMASK, unblock)
        try:
            server.run()
        finally:
            # One write() per line: workers share stderr, and print() writes the text and the
            # newline separately, so two workers' lines could interleave. A pipe write of
            # less than PIPE_BUF bytes is atomic.
            os.write(2, f"{server.stats.line()} worker={index}\n".encode())
    except Exception as err:
        print(f"fastsock: worker {index} failed: {err}", file=sys.stderr, flush=True)
        return 1
    return 0
