"""The IPC floor (fastsock/floor.py): echo over a pipe pair or a socketpair, no server.

Every byte verified over each pair kind; seqpacket sends one message per send; a child that
dies ends the run at once with a clear error (never a hang); bad input is one line and exit
2; the C load client drives the same pairs with --fds.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from fastsock.floor import KINDS, FloorConfig, FloorError, echo_argv, make_pair, run_floor
from fastsock.native import load_engine_module
from tests.conftest import assert_one_line_error

needs_native = pytest.mark.skipif(
    load_engine_module()[0] is None, reason="the native load engine was not built here"
)

# A child that echoes like fastsock.echo_child but exits 3 as soon as a read is not exactly
# one message of SIZE bytes (argv: read fd, write fd, buffer bytes).
STRICT_CHILD = """
import os, sys
r, w, size = int(sys.argv[1]), int(sys.argv[2]), SIZE
buf = bytearray(int(sys.argv[3]))
while True:
    try:
        n = os.readv(r, [buf])
    except ConnectionResetError:  # the parent closed with echoes unread: the run is over
        sys.exit(0)
    if n == 0:
        sys.exit(0)
    if n != size:
        sys.exit(3)
    os.write(w, memoryview(buf)[:n])
"""


def short(kind: str, size: int = 64, depth: int = 1) -> FloorConfig:
    return FloorConfig(kind, size=size, depth=depth, duration=0.3, warmup=0.05)


@needs_native
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("size", "depth"), [(1, 1), (1000, 4), (60 * 1024, 8)])
def test_echo_is_intact_over_every_pair(kind: str, size: int, depth: int) -> None:
    result = run_floor(short(kind, size, depth))
    assert result["errors"]["total"] == 0, result["error_samples"]
    assert result["child"]["exit_status"] == 0
    assert result["messages"] > 0
    assert result["latency_us"]["count"] == result["messages"]
    assert result["bytes"] == result["messages"] * size
    p = result["params"]
    assert (p["transport"], p["size"], p["depth"], p["engine"]) == (kind, size, depth, "native")
    assert p["buffer_bytes"] >= 4096  # what the channel holds one way (pipe: F_GETPIPE_SZ)
    # The echo child's CPU time is measured (as a server's would be).
    assert result["cpu"]["server_user_s"] is not None


@needs_native
def test_seqpacket_sends_one_message_per_send() -> None:
    """With 8 in flight the engine's first send carries all 8 messages: over a stream
    socketpair they reach the strict child as one read and it exits 3 (the probe works);
    over seqpacket every send must be one message, so it echoes them all."""
    command = [sys.executable, "-c", STRICT_CHILD.replace("SIZE", "512")]
    stream = run_floor(short("socketpair", 512, 8), child_command=command)
    assert stream["child"]["exit_status"] == 3
    result = run_floor(short("socketpair-seqpacket", 512, 8), child_command=command)
    assert result["child"]["exit_status"] == 0
    assert result["errors"]["total"] == 0, result["error_samples"]
    assert result["messages"] > 8


@needs_native
def test_a_child_that_dies_at_once_is_a_clear_error() -> None:
    start = time.monotonic()
    result = run_floor(
        FloorConfig("pipe", duration=20, warmup=0),
        child_command=[sys.executable, "-c", "import os; os._exit(3)"],
    )
    assert time.monotonic() - start < 10  # the run ended with the child, not at 20 s
    assert result["child"]["exit_status"] == 3
    assert result["errors"]["total"] >= 1
    assert result["error_samples"][0] == "the echo child exited with status 3"


@needs_native
@pytest.mark.parametrize("kind", KINDS)
def test_a_child_killed_mid_run_ends_the_run(kind: str) -> None:
    """SIGKILL after 0.3 s of echoing: end of file or EPIPE on the parent's side, counted."""
    killer = (
        "import os, signal, sys, threading\n"
        "from fastsock.echo_child import echo\n"
        "threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGKILL)).start()\n"
        "echo(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))\n"
    )
    start = time.monotonic()
    result = run_floor(
        FloorConfig(kind, duration=20, warmup=0), child_command=[sys.executable, "-c", killer]
    )
    assert time.monotonic() - start < 10
    assert result["child"]["exit_status"] == -9
    assert result["errors"]["total"] >= 1
    assert result["messages"] > 0  # it did echo before it died
    assert "signal 9" in result["error_samples"][0]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--kind", "fifo"], "Invalid value for '--kind'"),
        (["--size", "0"], "Invalid value for '--size'"),
        (["--kind", "socketpair-seqpacket", "--size", "300000"], "seqpacket message"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], fragment: str) -> None:
    argv = [sys.executable, "-m", "fastsock.floor", *args, "--duration", "0.1"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert_one_line_error(result, fragment)


def test_config_errors_name_the_limit() -> None:
    with pytest.raises(FloorError, match="--depth"):
        FloorConfig("pipe", depth=0).validate()
    with pytest.raises(FloorError, match="--kind"):
        FloorConfig("tcp").validate()


def test_echo_child_usage_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fastsock.echo_child", "x"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage:")


@pytest.mark.parametrize("kind", KINDS)
def test_c_load_client_drives_the_same_pairs(kind: str) -> None:
    """load_client --fds R,W: the C client over an inherited pipe pair or socketpair."""
    from bench.peers.registry import LOAD_CLIENT, build_c_peers

    why = build_c_peers().get("load_client")
    if why is not None:
        pytest.skip(f"no C load client: {why}")
    pair = make_pair(kind)
    child = subprocess.Popen(echo_argv(pair, 1024), pass_fds=sorted(set(pair.child)))
    pair.close_child_ends()
    r, w = pair.parent
    argv = [str(LOAD_CLIENT), "--fds", f"{r},{w}", "--size", "1024", "--depth", "4"]
    argv += ["--duration", "0.3", "--warmup", "0.05"]
    if kind == "socketpair-seqpacket":
        argv.append("--messages")
    try:
        proc = subprocess.run(
            argv, pass_fds=sorted(set(pair.parent)), capture_output=True, text=True, timeout=30
        )
    finally:
        pair.close_parent_ends()
        assert child.wait(10) == 0
    assert proc.returncode == 0, proc.stderr
    import json

    out = json.loads(proc.stdout)
    assert out["errors"] == 0 and out["messages"] > 0
    assert out["transport"] == ("pipe" if kind == "pipe" else "socketpair")
    # One connection: its count in the window is all of the window's messages.
    assert out["conn_messages"] == [out["messages"]]


def test_c_load_client_fds_usage_errors(tmp_path) -> None:
    from bench.peers.registry import LOAD_CLIENT, build_c_peers

    why = build_c_peers().get("load_client")
    if why is not None:
        pytest.skip(f"no C load client: {why}")
    regular = tmp_path / "f"
    regular.write_bytes(b"x")
    with open(regular, "rb") as f:
        fd = f.fileno()
        for fds, fragment in (("3", "R,W"), (f"{fd},{fd}", "neither a pipe nor a socket")):
            proc = subprocess.run(
                [str(LOAD_CLIENT), "--fds", fds], pass_fds=[fd], capture_output=True, text=True
            )
            assert proc.returncode == 2
            assert fragment in proc.stderr
