"""Start a server as a subprocess, wait for its ready line, and stop it by PID.

Every server the harness and the tests run (fastsock and its peers) prints one ready line
``<name>: listening on <endpoint>`` on stdout when it accepts connections; this module waits for
that line, so nothing ever sleeps and hopes.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Sequence

from fastsock.address import Endpoint, parse_endpoint

READY_RE = re.compile(r"^\S+: listening on (\S+)\s*$")


class ServerStartError(RuntimeError):
    """The server exited or stayed silent instead of printing its ready line."""


class ServerProcess:
    """A running server subprocess. Use as a context manager so it is stopped on every path."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        ready_timeout: float = 15.0,
        env: dict[str, str] | None = None,
        cpu_affinity: set[int] | None = None,
        pass_fds: Sequence[int] = (),
    ) -> None:
        self.argv = list(argv)
        preexec = None
        if cpu_affinity is not None:
            cpus = set(cpu_affinity)

            def preexec() -> None:
                os.sched_setaffinity(0, cpus)

        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            preexec_fn=preexec,
            pass_fds=tuple(pass_fds),
        )
        self.pid = self.proc.pid
        self.stderr_text = ""
        try:
            self.endpoint: Endpoint = self._wait_ready(ready_timeout)
        except BaseException:
            self.kill()
            raise

    def _wait_ready(self, timeout: float) -> Endpoint:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ServerStartError(f"{self.argv[0]}: no ready line within {timeout:.0f}s")
                if not sel.select(left):
                    continue
                chunk = os.read(fd, 4096)
                if not chunk:
                    self.proc.wait(timeout=5)
                    err = self.proc.stderr.read().decode(errors="replace").strip()  # type: ignore[union-attr]
                    raise ServerStartError(
                        f"{' '.join(self.argv)} exited with {self.proc.returncode}: {err}"
                    )
                buf += chunk
        line = buf.split(b"\n", 1)[0].decode(errors="replace")
        match = READY_RE.match(line)
        if not match:
            raise ServerStartError(f"unexpected ready line from {self.argv[0]}: {line!r}")
        return parse_endpoint(match.group(1))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` (SIGTERM), wait up to ``timeout``, then SIGKILL. Returns the exit code."""
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            _, err = self.proc.communicate()
        self.stderr_text = (err or b"").decode(errors="replace")
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        try:
            self.proc.communicate(timeout=5)
        except (subprocess.TimeoutExpired, ValueError):
            pass

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.stop()
        else:
            self.kill()


def stop_for_a_while(
    pid: int, delay: float, pause: float, stopped: threading.Event
) -> threading.Thread:
    """SIGSTOP ``pid`` after ``delay`` s for ``pause`` s, setting ``stopped`` while it is, and
    SIGCONT it whatever happens. The coordinated-omission tests and the stall study use it:
    the stop is the experiment, so the sleeps are a schedule, not a wait for readiness."""

    def run() -> None:
        time.sleep(delay)
        os.kill(pid, signal.SIGSTOP)
        try:
            stopped.set()
            time.sleep(pause)
        finally:
            os.kill(pid, signal.SIGCONT)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread
