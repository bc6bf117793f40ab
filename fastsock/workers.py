"""``fastsock serve --workers N``: N single-threaded servers sharing one listening socket.

The parent binds and listens (so a start-up error is reported once, and ``--port 0`` yields one
port), forks the workers, and prints the ready line. Each worker runs its own event loop on the
inherited listener; the kernel hands every new connection to one of them (the others' accept()
gets EAGAIN). The parent only supervises: SIGTERM/SIGINT are forwarded to the workers as SIGTERM
(each drains and prints its own stats line, tagged ``worker=I``), the parent waits for all of
them, removes the UNIX socket file, and exits 0 if every worker did.

Workers ignore SIGINT: a Ctrl-C reaches the whole process group, and the parent forwards it
once as SIGTERM -- a second signal would make a draining worker close its connections at once.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

from fastsock.address import bound_endpoint, listen, remove_unix_file, unix_file_identity
from fastsock.server import Server, ServerConfig


def serve_workers(config: ServerConfig, workers: int, announce: Callable[[str], None]) -> int:
    """Run ``workers`` servers on one listener; returns the exit status for the parent.

    ``announce(endpoint_text)`` prints the ready line once every worker is forked. Start-up
    errors raise :class:`fastsock.address.EndpointError` before anything is forked.
    """
    sock = listen(config.endpoint, config.backlog, config.unix_mode)
    endpoint = bound_endpoint(sock, config.endpoint)
    identity = None
    if endpoint.is_unix and not endpoint.is_abstract:
        identity = unix_file_identity(endpoint.path)
    pids: list[int] = []
    sys.stdout.flush()
    sys.stderr.flush()
    for index in range(workers):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, which os._exit()s
            os._exit(_worker(config, sock, index))
        pids.append(pid)
    sock.close()  # the parent never accepts

    def forward(signum: int, frame: object) -> None:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    announce(str(endpoint))
    status = 0
    for pid in pids:
        _, code = os.waitpid(pid, 0)  # retried after our signal handler runs (PEP 475)
        if os.waitstatus_to_exitcode(code) != 0:
            status = 1
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if identity is not None:
        remove_unix_file(endpoint.path, identity)
    return status


def _worker(config: ServerConfig, sock, index: int) -> int:  # pragma: no cover - child side
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        server = Server(config, sock=sock, owns_unix_file=False)
        server.install_signal_handlers((signal.SIGTERM,))
        try:
            server.run()
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            # One write() per line: workers share stderr, and print() writes the text and the
            # newline separately, so two workers' lines could interleave. A pipe write of
            # less than PIPE_BUF bytes is atomic.
            os.write(2, f"{server.stats.line()} worker={index}\n".encode())
    except Exception as err:
        print(f"fastsock: worker {index} failed: {err}", file=sys.stderr, flush=True)
        return 1
    return 0
