"""Issue 15, item 6: a ``fastsock load`` run that finished normally closes every connection
cleanly (shutdown, drain, close), so a reset counted by the server means a real fault.

Before the fix the client closed with echoes still unread in its receive buffer; the kernel
answers that with a RST, and a plain 4-connection run left ``resets=4`` on the server.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import FASTSOCK, parse_stats

CONNS = 4
CASES = {
    # name: (serve arguments, load arguments, transport)
    "echo-unix": (["--mode", "echo"], ["--size", "64"], "unix"),
    "echo-tcp-deep": (["--mode", "echo"], ["--size", "64K", "--depth", "16"], "tcp"),
    "echo-tcp-2procs": (["--mode", "echo"], ["--size", "1K", "--procs", "2"], "tcp"),
    "recv-unix": (["--mode", "source"], ["--workload", "recv", "--size", "64K"], "unix"),
    "send-tcp": (["--mode", "discard"], ["--workload", "send", "--size", "64K"], "tcp"),
    "http-tcp": (["--mode", "http"], ["--http", "/f.bin", "--depth", "8"], "tcp"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_finished_load_run_leaves_no_resets_on_the_server(serve, tmp_path, case):
    serve_args, load_args, transport = CASES[case]
    if "http" in serve_args:
        (tmp_path / "f.bin").write_bytes(bytes(range(256)) * 256)
        serve_args = [*serve_args, "--root", str(tmp_path)]
    if transport == "unix":
        where = ["--unix", str(tmp_path / "s.sock")]
        server = serve(*where, *serve_args)
    else:
        server = serve("--port", "0", *serve_args)
        where = ["--port", str(server.endpoint.port)]
    load = subprocess.run(
        [*FASTSOCK, "load", *where, "--conns", str(CONNS), "--duration", "0.5", "--warmup", "0.1"]
        + [*load_args, "--json", "-"],
        capture_output=True,
        text=True,
        timeout=40,
    )
    assert load.returncode == 0, load.stderr
    result = json.loads(load.stdout)
    assert result["errors"]["total"] == 0
    assert server.stop() == 0
    stats = parse_stats(server.stderr_text)
    print(f"{case}: server stats after the run: {stats}")
    assert stats["accepted"] == stats["closed"] >= CONNS
    assert stats["resets"] == 0, f"a normal run ended with resets={stats['resets']}"
    assert stats["errors"] == 0
