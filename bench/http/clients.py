"""The HTTP load clients of bench/http/run.py: wrk (TCP only) and bench/http/http_load.c.

Both run as a subprocess for a fixed time against one URL; each result says how many responses
per second, how many body bytes per second, how many errors, and how much CPU the client used
(so a run where the client, not the server, was the limit can be flagged).

``http_load`` is compiled here with ``cc`` into ``build/bench/`` (rebuilt when its source is
newer). wrk has no warm-up option: a separate short wrk run is made and discarded.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fastsock.address import Endpoint

REPO = Path(__file__).resolve().parents[2]
HTTP_LOAD_SRC = REPO / "bench" / "http" / "http_load.c"
HTTP_LOAD = REPO / "build" / "bench" / "http_load"
INCLUDE = REPO / "bench" / "peers" / "c"  # common.h: endpoints, option parsing, die()
CFLAGS = ("-O2", "-Wall", "-Wextra")


@dataclass
class ClientResult:
    client: str
    req_per_s: float
    mb_per_s: float  # body bytes only, 1 MB = 1e6 bytes
    errors: int
    seconds: float
    cpu_s: float
    verified: int = 0  # bodies whose checksum was compared (http_load)
    note: str = ""

    @property
    def cpu_share(self) -> float:
        """Client CPU time per second of run: ~1.0 means one core busy (client-bound)."""
        return self.cpu_s / self.seconds if self.seconds > 0 else 0.0


def build_http_load(cc: str | None = None) -> str | None:
    """Compile http_load if needed; None when it is ready, else why it is not."""
    if HTTP_LOAD.exists() and HTTP_LOAD.stat().st_mtime_ns >= HTTP_LOAD_SRC.stat().st_mtime_ns:
        return None
    compiler = shutil.which(cc or os.environ.get("CC") or "cc")
    if compiler is None:
        return "no C compiler (cc) to build bench/http/http_load.c"
    HTTP_LOAD.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".http_load.", dir=HTTP_LOAD.parent)
    os.close(fd)
    try:
        result = subprocess.run(
            [compiler, *CFLAGS, "-I", str(INCLUDE), "-o", tmp, str(HTTP_LOAD_SRC)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            return f"compiling http_load.c failed: {result.stderr.strip()[:300]}"
        os.chmod(tmp, 0o755)
        os.replace(tmp, HTTP_LOAD)  # a concurrent run never sees a half-written binary
        return None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def file_checksum(path: Path) -> str:
    """The checksum http_load compares bodies with (computed from the file by http_load)."""
    out = subprocess.run(
        [str(HTTP_LOAD), "--hash-file", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return out.stdout.strip()


def run_measured(
    argv: list[str], timeout: float, preexec: Callable[[], None] | None
) -> tuple[int, str, str, float]:
    """Run ``argv``; returns (exit status, stdout, stderr, its CPU seconds from wait4)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, preexec_fn=preexec)
        try:
            _, status, usage = _wait4(proc.pid, timeout)
        except TimeoutError:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        cpu = usage.ru_utime + usage.ru_stime
        return proc.returncode, out.read().decode(), err.read().decode(errors="replace"), cpu


def _wait4(pid: int, timeout: float) -> tuple[int, int, resource.struct_rusage]:
    import time

    deadline = time.monotonic() + timeout
    while True:
        wpid, status, usage = os.wait4(pid, os.WNOHANG)
        if wpid == pid:
            return wpid, status, usage
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.02)


def run_http_load(
    endpoint: Endpoint,
    path: str,
    *,
    conns: int,
    duration: float,
    warmup: float,
    length: int,
    checksum: str | None,
    verify_every: int = 1,
    depth: int = 1,
    preexec: Callable[[], None] | None = None,
) -> ClientResult:
    where = (
        ["--unix", endpoint.path]
        if endpoint.is_unix
        else ["--host", endpoint.host, "--port", str(endpoint.port)]
    )
    argv = [
        str(HTTP_LOAD),
        *where,
        "--path",
        path,
        "--conns",
        str(conns),
        "--depth",
        str(depth),
        "--duration",
        str(duration),
        "--warmup",
        str(warmup),
        "--length",
        str(length),
        "--verify-every",
        str(verify_every),
    ]
    if checksum:
        argv += ["--checksum", checksum]
    status, out, err, _ = run_measured(argv, duration + warmup + 60, preexec)
    try:
        data = json.loads(out)
    except json.JSONDecodeError:
        return ClientResult("http_load", 0.0, 0.0, 1, duration, 0.0, note=err.strip()[:300])
    return ClientResult(
        "http_load",
        data["req_per_s"],
        data["mb_per_s"],
        data["errors"] + (0 if status in (0, 1) else 1),
        data["seconds"],
        data["cpu_user_s"] + data["cpu_sys_s"],  # over the measured window only
        data["verified"],
        note=err.strip()[:300],
    )


_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def parse_wrk(output: str) -> tuple[float, int]:
    """(requests per second, errors) from wrk's report."""
    match = _RPS.search(output)
    if match is None:
        raise ValueError(f"no Requests/sec in wrk output: {output[:200]!r}")
    errors = 0
    sock = _SOCKET_ERRORS.search(output)
    if sock:
        errors += sum(int(n) for n in sock.groups())
    non2xx = _NON_2XX.search(output)
    if non2xx:
        errors += int(non2xx.group(1))
    return float(match.group(1)), errors


def _wrk_argv(endpoint: Endpoint, path: str, conns: int, seconds: float) -> list[str]:
    """wrk with one thread (like http_load) and a timeout long enough for 256 MiB bodies;
    wrk takes whole seconds."""
    url = f"http://{endpoint.host}:{endpoint.port}{path}"
    return ["wrk", "-t1", f"-c{conns}", "--timeout", "30s", f"-d{max(1, round(seconds))}s", url]


def wrk_warmup(endpoint: Endpoint, path: str, *, conns: int, seconds: float) -> None:
    """wrk has no warm-up option: a short run whose results are dropped."""
    run_measured(_wrk_argv(endpoint, path, conns, seconds), seconds + 60, None)


def run_wrk(
    endpoint: Endpoint,
    path: str,
    *,
    conns: int,
    duration: float,
    length: int,
    preexec: Callable[[], None] | None = None,
) -> ClientResult:
    seconds = max(1, round(duration))
    argv = _wrk_argv(endpoint, path, conns, seconds)
    status, out, err, cpu = run_measured(argv, seconds + 90, preexec)
    try:
        rps, errors = parse_wrk(out)
    except ValueError as exc:
        return ClientResult("wrk", 0.0, 0.0, 1, seconds, cpu, note=f"{exc} {err[:200]}")
    if status != 0:
        errors += 1
    # wrk's Transfer/sec counts heads too; body bytes are what both clients report.
    return ClientResult("wrk", rps, rps * length / 1e6, errors, seconds, cpu)


def wrk_available() -> bool:
    return shutil.which("wrk") is not None
