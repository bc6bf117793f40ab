"""The peer servers and the C load client: they echo every byte, exit cleanly, and the client
measures only what it should and fails loudly on a server that corrupts, duplicates or drops."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from bench.peers import registry
from bench.peers.registry import LOAD_CLIENT, PEERS, available_peers, peer_env
from fastsock.address import Endpoint, connect, tcp_endpoint, unix_endpoint
from fastsock.process import ServerProcess
from tests.conftest import has_ipv6_loopback

MY_PEERS = [
    "asyncio-protocol",
    "asyncio-streams",
    "uvloop-protocol",
    "bare-epoll",
    "busy-epoll",
    "threaded",
    "c-epoll",
    "c-uring",
]
ALL_PEERS = ["fastsock", "fastsock-uring", *MY_PEERS]
PAYLOAD_SIZES = [1, 64 * 1024, 1024 * 1024]
IO_TIMEOUT = 15.0


# ---------------------------------------------------------------------------------------------
# helpers


@pytest.fixture(scope="session")
def availability() -> dict[str, str | None]:
    status = available_peers()  # compiles the C programs if they are out of date
    # fastsock serve is written in parallel with the peers: skip it until the command exists.
    probe = subprocess.run(
        [sys.executable, "-m", "fastsock", "serve", "--help"],
        capture_output=True,
        timeout=30,
        env=peer_env(),
    )
    if probe.returncode != 0:
        status["fastsock"] = "`fastsock serve` is not implemented yet"
    return status


def require(availability: dict[str, str | None], name: str) -> None:
    reason = availability[name]
    if reason is not None:
        pytest.skip(f"{name}: {reason}")


@pytest.fixture(scope="session")
def load_client(availability: dict[str, str | None]) -> Path:
    if not LOAD_CLIENT.exists():
        pytest.skip(f"C load client: {registry.build_c_peers()['load_client']}")
    return LOAD_CLIENT


def abstract_name() -> str:
    return f"@fastsock-test-{uuid.uuid4().hex[:12]}"


def endpoint_for(transport: str, tmp_path: Path) -> Endpoint:
    if transport == "unix":
        return unix_endpoint(str(tmp_path / "peer.sock"))
    if transport == "tcp6":
        return tcp_endpoint("::1", 0)
    return tcp_endpoint("127.0.0.1", 0)


@contextmanager
def running(name: str, endpoint: Endpoint, mode: str = "echo") -> Iterator[ServerProcess]:
    with ServerProcess(PEERS[name].argv(endpoint, mode), env=peer_env()) as server:
        yield server


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            raise AssertionError(f"connection closed after {got} of {size} bytes")
        got += n
    return bytes(buf)


def echo_roundtrip(sock: socket.socket, payload: bytes) -> bytes:
    """Send from a thread while this one reads: writing 1 MiB before reading would deadlock."""
    failures: list[BaseException] = []

    def send() -> None:
        try:
            sock.sendall(payload)
        except BaseException as err:  # reported to the test thread below
            failures.append(err)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        echoed = recv_exactly(sock, len(payload))
    finally:
        sender.join(IO_TIMEOUT)
    assert not failures, failures
    return echoed


def open_conn(endpoint: Endpoint) -> socket.socket:
    sock = connect(endpoint, timeout=IO_TIMEOUT)
    sock.settimeout(IO_TIMEOUT)
    return sock


def run_quiet(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=peer_env())


# ---------------------------------------------------------------------------------------------
# peer servers


@pytest.mark.parametrize("transport", ["tcp", "unix"])
@pytest.mark.parametrize("name", ALL_PEERS)
def test_echo_returns_every_byte(
    availability: dict[str, str | None], name: str, transport: str, tmp_path: Path
) -> None:
    require(availability, name)
    requested = endpoint_for(transport, tmp_path)
    with running(name, requested) as server:
        assert server.endpoint.transport == transport
        if transport == "tcp":
            assert server.endpoint.host == "127.0.0.1"
            assert server.endpoint.port != 0  # the ready line shows the real port
        else:
            assert server.endpoint.path == requested.path
        for size in PAYLOAD_SIZES:
            payload = os.urandom(size)
            with open_conn(server.endpoint) as sock:
                assert echo_roundtrip(sock, payload) == payload, f"{size} B came back different"


@pytest.mark.parametrize("name", ALL_PEERS)
def test_connections_do_not_mix(
    availability: dict[str, str | None], name: str, tmp_path: Path
) -> None:
    """Several connections at once, interleaved messages: each gets back only its own bytes."""
    require(availability, name)
    with running(name, endpoint_for("unix", tmp_path)) as server:
        socks = [open_conn(server.endpoint) for _ in range(6)]
        try:
            for round_no in range(5):
                payloads = [os.urandom(1000 + 37 * i + round_no) for i in range(len(socks))]
                for sock, payload in zip(socks, payloads, strict=True):
                    sock.sendall(payload)
                for sock, payload in zip(socks, payloads, strict=True):
                    assert recv_exactly(sock, len(payload)) == payload
        finally:
            for sock in socks:
                sock.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("name", ALL_PEERS)
def test_signal_exits_0_and_removes_socket_file(
    availability: dict[str, str | None], name: str, sig: int, tmp_path: Path
) -> None:
    require(availability, name)
    path = tmp_path / "peer.sock"
    with running(name, unix_endpoint(str(path))) as server:
        assert path.exists()
        # An open connection must not keep the server alive (threads blocked in recv, tasks).
        with open_conn(server.endpoint) as sock:
            assert echo_roundtrip(sock, b"ping") == b"ping"
            code = server.stop(timeout=10, sig=sig)
    assert code == 0, server.stderr_text
    assert not path.exists(), "the socket file was left behind"


@pytest.mark.parametrize("name", ALL_PEERS)
def test_abstract_namespace(availability: dict[str, str | None], name: str) -> None:
    require(availability, name)
    requested = unix_endpoint(abstract_name())
    with running(name, requested) as server:
        assert str(server.endpoint) == f"unix:{requested.path}"
        with open_conn(server.endpoint) as sock:
            payload = os.urandom(4096)
            assert echo_roundtrip(sock, payload) == payload
        assert server.stop() == 0


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
@pytest.mark.parametrize("name", ALL_PEERS)
def test_ipv6_loopback(availability: dict[str, str | None], name: str, tmp_path: Path) -> None:
    require(availability, name)
    with running(name, endpoint_for("tcp6", tmp_path)) as server:
        assert str(server.endpoint).startswith("tcp://[::1]:")
        with open_conn(server.endpoint) as sock:
            payload = os.urandom(70_000)
            assert echo_roundtrip(sock, payload) == payload


@pytest.mark.parametrize("name", ALL_PEERS)
def test_discard_mode_returns_nothing(
    availability: dict[str, str | None], name: str, tmp_path: Path
) -> None:
    require(availability, name)
    with running(name, endpoint_for("tcp", tmp_path), mode="discard") as server:
        with open_conn(server.endpoint) as sock:
            sock.sendall(os.urandom(1024 * 1024))
            sock.shutdown(socket.SHUT_WR)
            # The server reads everything, answers nothing, and closes when we are done.
            assert sock.recv(65536) == b""
        assert server.stop() == 0


@pytest.mark.parametrize("name", MY_PEERS)
def test_bad_input_is_one_line_and_exit_2(
    availability: dict[str, str | None], name: str, tmp_path: Path
) -> None:
    require(availability, name)
    command = list(PEERS[name].command)
    not_a_socket = tmp_path / "file.txt"
    not_a_socket.write_text("keep me")
    cases = [
        ["--port", "70000"],
        ["--host", "example.invalid", "--port", "0"],
        ["--unix", str(not_a_socket)],
        ["--unix", str(tmp_path / "no-such-dir" / "x.sock")],
        ["--unix", "/" + "x" * 200],
        ["--port", "0", "--unix", str(tmp_path / "both.sock")],
        [],
    ]
    for args in cases:
        result = run_quiet([*command, *args])
        err = result.stderr.strip()
        assert result.returncode == 2, (args, result.returncode, err)
        assert len(err.splitlines()) == 1, (args, err)
        assert "Traceback" not in err
        assert result.stdout == ""
    assert not_a_socket.read_text() == "keep me"


@pytest.mark.parametrize("name", MY_PEERS)
def test_unix_path_in_use_is_refused_and_stale_one_replaced(
    availability: dict[str, str | None], name: str, tmp_path: Path
) -> None:
    require(availability, name)
    path = tmp_path / "peer.sock"
    # A socket file nobody listens on (a crashed server's) is replaced.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()
    with running(name, unix_endpoint(str(path))) as server:
        with open_conn(server.endpoint) as sock:
            assert echo_roundtrip(sock, b"fresh") == b"fresh"
        # A second server on the same live path must refuse and leave the first one alone.
        second = run_quiet(PEERS[name].argv(unix_endpoint(str(path))))
        assert second.returncode == 2, second.stderr
        assert "in use" in second.stderr
        with open_conn(server.endpoint) as sock:
            assert echo_roundtrip(sock, b"still") == b"still"


@pytest.mark.parametrize("transport", ["unix", "tcp"])
@pytest.mark.parametrize("name", ["c-epoll", "c-uring"])
def test_c_servers_survive_resets_mid_echo_and_reuse_their_fds(
    availability: dict[str, str | None], name: str, transport: str, tmp_path: Path
) -> None:
    """Clients that send 1 MiB, read nothing and reset: the server's echo fails mid-send (for
    c-uring, the linked SEND fails and the kernel cancels the RECV behind it), the fd numbers
    are reused by the next connections, and every later echo is still intact."""
    require(availability, name)
    with running(name, endpoint_for(transport, tmp_path)) as server:
        fds_at_start = len(os.listdir(f"/proc/{server.pid}/fd"))
        for _ in range(20):
            with open_conn(server.endpoint) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.settimeout(0.2)
                try:
                    sock.sendall(os.urandom(1 << 20))  # the echo fills both buffers
                except TimeoutError:
                    pass
        # Every reset connection is closed: the server's fd count comes back to where it was.
        deadline = time.monotonic() + 5
        while len(os.listdir(f"/proc/{server.pid}/fd")) > fds_at_start:
            assert time.monotonic() < deadline, "the server kept reset connections open"
            time.sleep(0.05)
        for size in (1, 100_000):
            payload = os.urandom(size)
            with open_conn(server.endpoint) as sock:
                assert echo_roundtrip(sock, payload) == payload
        assert server.proc.poll() is None


def test_uvloop_missing_is_a_one_line_error(tmp_path: Path) -> None:
    fake = tmp_path / "uvloop"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('uvloop hidden by the test')\n")
    env = peer_env()
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    result = subprocess.run(
        PEERS["uvloop-protocol"].argv(tcp_endpoint("127.0.0.1", 0)),
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "Error: uvloop is not installed (pip install uvloop)"
    ]


# ---------------------------------------------------------------------------------------------
# registry


def test_registry_lists_every_peer_and_builds_argv(tmp_path: Path) -> None:
    assert list(PEERS) == ["fastsock", "fastsock-twin", *ALL_PEERS[1:]]
    sock_path = str(tmp_path / "x.sock")
    # The A/A twin is fastsock itself, started a second time.
    assert PEERS["fastsock-twin"].argv(unix_endpoint(sock_path)) == PEERS["fastsock"].argv(
        unix_endpoint(sock_path)
    )
    assert PEERS["fastsock"].argv(unix_endpoint(sock_path)) == [
        sys.executable, "-m", "fastsock", "serve", "--idle-timeout", "300",
        "--unix", sock_path, "--mode", "echo",
    ]  # fmt: skip
    assert PEERS["c-epoll"].argv(tcp_endpoint("::1", 0), mode="discard") == [
        str(registry.BIN_DIR / "echo_server"), "--host", "::1", "--port", "0", "--mode", "discard",
    ]  # fmt: skip
    with pytest.raises(ValueError):
        PEERS["threaded"].argv(tcp_endpoint("127.0.0.1", 0), mode="http")


def test_build_only_when_sources_are_newer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    src, out = tmp_path / "c", tmp_path / "bin"
    shutil.copytree(registry.C_DIR, src)
    monkeypatch.setattr(registry, "C_DIR", src)
    monkeypatch.setattr(registry, "BIN_DIR", out)

    all_built = {name: None for name in ("echo_server", "uring_echo_server", "load_client")}
    assert registry.build_c_peers() == all_built
    built = {name: (out / name).stat().st_mtime_ns for name in registry.C_PROGRAMS}
    assert registry.build_c_peers() == all_built
    assert {name: (out / name).stat().st_mtime_ns for name in registry.C_PROGRAMS} == built

    # A newer header rebuilds the programs that include it, and only those.
    future = time.time() + 60
    os.utime(src / "server.h", (future, future))
    assert registry.build_c_peers() == all_built
    rebuilt = {n for n in registry.C_PROGRAMS if (out / n).stat().st_mtime_ns != built[n]}
    assert rebuilt == {"echo_server", "uring_echo_server"}
    os.utime(src / "common.h", (future + 5, future + 5))
    assert registry.build_c_peers() == all_built
    for name in registry.C_PROGRAMS:
        assert (out / name).stat().st_mtime_ns != built[name]

    # A compile error is reported as a reason, not raised.
    (src / "echo_server.c").write_text("int main(void) { return syntax error; }\n")
    os.utime(src / "echo_server.c", (future + 10, future + 10))
    status = registry.build_c_peers()
    assert status["echo_server"] is not None and "failed" in status["echo_server"]


def test_missing_compiler_and_module_are_reasons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "BIN_DIR", tmp_path / "bin")
    monkeypatch.setenv("CC", "no-such-compiler-xyz")
    real_find_spec = registry.importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "uvloop" else real_find_spec(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(registry.importlib.util, "find_spec", find_spec)
    status = available_peers()
    assert "no C compiler" in (status["c-epoll"] or "")
    assert "no C compiler" in (status["c-uring"] or "")
    assert "uvloop" in (status["uvloop-protocol"] or "")
    assert status["asyncio-protocol"] is None
    assert status["threaded"] is None


# ---------------------------------------------------------------------------------------------
# C load client


def run_client(
    client: Path, endpoint: Endpoint, *args: str, timeout: float = 30
) -> tuple[int, dict | None, str]:
    if endpoint.is_unix:
        where = ["--unix", endpoint.path]
    else:
        where = ["--host", endpoint.host, "--port", str(endpoint.port)]
    result = subprocess.run(
        [str(client), *where, *args], capture_output=True, text=True, timeout=timeout
    )
    report = json.loads(result.stdout) if result.stdout.strip() else None
    return result.returncode, report, result.stderr


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_load_client_against_c_server(
    availability: dict[str, str | None], load_client: Path, transport: str, tmp_path: Path
) -> None:
    require(availability, "c-epoll")
    with running("c-epoll", endpoint_for(transport, tmp_path)) as server:
        args = (
            "--size",
            "64",
            "--conns",
            "4",
            "--depth",
            "2",
            "--duration",
            "1",
            "--warmup",
            "0.2",
        )
        code, report, err = run_client(load_client, server.endpoint, *args)
    assert code == 0, err
    assert report is not None
    assert report["errors"] == 0
    assert report["messages"] > 0
    assert (report["conns"], report["size"], report["depth"]) == (4, 64, 2)
    assert report["transport"] == transport
    assert 0.9 <= report["elapsed_s"] < 3.0
    rate = report["messages"] / report["elapsed_s"]
    assert report["msgs_per_s"] == pytest.approx(rate, rel=1e-3)
    assert report["mb_per_s"] == pytest.approx(rate * 64 / 1e6, rel=1e-3)
    cpu = report["cpu_user_s"] + report["cpu_sys_s"]
    assert 0 < cpu <= report["elapsed_s"] * 1.05 + 0.05  # one thread: at most one core


@pytest.mark.parametrize(
    ("server", "transport", "size", "conns", "depth"),
    [
        # 1 MiB messages, 3 in flight: far more than the socket buffers hold, so the client
        # must read while it writes and the server must stop reading while its writes block.
        ("c-epoll", "unix", 1048576, 2, 3),
        # A server that echoes in odd-sized pieces: the client's verification still passes.
        ("asyncio-streams", "tcp", 100000, 3, 2),
    ],
    ids=["big-messages-no-deadlock", "odd-sized-echo-pieces"],
)
def test_load_client_verified_echo(
    availability: dict[str, str | None],
    load_client: Path,
    tmp_path: Path,
    server: str,
    transport: str,
    size: int,
    conns: int,
    depth: int,
) -> None:
    require(availability, server)
    with running(server, endpoint_for(transport, tmp_path)) as running_server:
        args = ("--size", str(size), "--conns", str(conns), "--depth", str(depth))
        code, report, err = run_client(
            load_client, running_server.endpoint, *args, "--duration", "0.5", "--warmup", "0.1"
        )
    assert code == 0, err
    assert report is not None and report["errors"] == 0 and report["messages"] > 0


@pytest.mark.parametrize("name", ["fastsock", "fastsock-uring"])
def test_load_client_ends_its_connections_without_resets(
    availability: dict[str, str | None], load_client: Path, name: str, tmp_path: Path
) -> None:
    """At the end of a run echoes are still in flight; closing over them unread would RST every
    connection and the server would count resets after a normal run. The client shuts its
    write side and reads to EOF first (it did not: the server counted one reset per connection)."""
    require(availability, name)
    with running(name, endpoint_for("tcp", tmp_path)) as server:
        args = ("--size", "4096", "--conns", "8", "--depth", "8", "--duration", "0.3")
        code, report, err = run_client(load_client, server.endpoint, *args, "--warmup", "0.1")
        assert code == 0, err
        assert server.stop() == 0
        stats = dict(re.findall(r"(\w+)=(\d+)", server.stderr_text.splitlines()[-1]))
    assert stats["closed"] == "8"
    assert stats["resets"] == "0"


@contextmanager
def thread_server(path: Path, handle: Callable[[socket.socket], None]) -> Iterator[Endpoint]:
    """A tiny in-process UNIX server: one thread per connection runs ``handle(conn)``."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(64)
    listener.settimeout(0.1)
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def serve_conn(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(IO_TIMEOUT)
            try:
                handle(conn)
            except OSError:
                pass  # the client hung up: expected once it detects the fault

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            worker = threading.Thread(target=serve_conn, args=(conn,), daemon=True)
            worker.start()
            workers.append(worker)

    acceptor = threading.Thread(target=accept_loop, daemon=True)
    acceptor.start()
    try:
        yield unix_endpoint(str(path))
    finally:
        stop.set()
        acceptor.join(5)
        listener.close()
        for worker in workers:
            worker.join(5)


def echo_with(transform: Callable[[int, bytes], bytes]) -> Callable[[socket.socket], None]:
    """An echo handler that passes each chunk (and its stream offset) through ``transform``."""

    def handle(conn: socket.socket) -> None:
        offset = 0
        while data := conn.recv(65536):
            conn.sendall(transform(offset, data))
            offset += len(data)

    return handle


FLIP_AT = 1000


def flip_one_byte(offset: int, data: bytes) -> bytes:
    if offset <= FLIP_AT < offset + len(data):
        i = FLIP_AT - offset
        return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]
    return data


def close_after_4k(offset: int, data: bytes) -> bytes:
    if offset >= 4096:
        raise ConnectionResetError("test server hangs up")
    return data


FAULTY = {
    # The byte at FLIP_AT belongs to message FLIP_AT // 64 (the engine of fastsock load).
    "flipped byte": (echo_with(flip_one_byte), f"message(s) {FLIP_AT // 64}..{FLIP_AT // 64} "),
    "duplicated chunk": (echo_with(lambda _o, data: data + data), ""),
    "early close": (echo_with(close_after_4k), "closed"),
}


@pytest.mark.parametrize("fault", list(FAULTY))
def test_load_client_fails_on_a_faulty_server(
    load_client: Path, fault: str, tmp_path: Path
) -> None:
    handle, message = FAULTY[fault]
    with thread_server(tmp_path / "faulty.sock", handle) as endpoint:
        code, report, err = run_client(
            load_client, endpoint, "--size", "64", "--duration", "1", "--warmup", "0.2"
        )
    assert code == 1, (code, report, err)
    assert report is not None and report["errors"] >= 1
    assert message in err
    assert len(err.strip().splitlines()) == 1  # one line per failed connection


def test_load_client_does_not_count_warmup(load_client: Path, tmp_path: Path) -> None:
    echoed = [0]

    def count(offset: int, data: bytes) -> bytes:
        echoed[0] += len(data)
        return data

    with thread_server(tmp_path / "count.sock", echo_with(count)) as endpoint:
        code, report, err = run_client(
            load_client, endpoint, "--size", "64", "--duration", "0.3", "--warmup", "1"
        )
    assert code == 0, err
    assert report is not None and report["messages"] > 0
    counted = report["messages"] * 64
    assert counted <= echoed[0]
    # ~1 s of warm-up against ~0.3 s measured: counting the warm-up would put this near 1.
    assert counted < 0.9 * echoed[0], (counted, echoed[0])


def test_load_client_refused_and_bad_options(load_client: Path, tmp_path: Path) -> None:
    code, report, err = run_client(
        load_client, unix_endpoint(str(tmp_path / "nobody.sock")), "--duration", "0.1"
    )
    assert code == 1 and report is None
    assert err.strip().splitlines() == [
        f"load_client: cannot connect to unix:{tmp_path / 'nobody.sock'}: No such file or directory"
    ]
    endpoint = unix_endpoint(str(tmp_path / "x.sock"))
    for args in (["--size", "0"], ["--conns", "x"], ["--duration", "-1"], ["--bogus"], ["extra"]):
        code, report, err = run_client(load_client, endpoint, *args)
        assert code == 2, args
        assert report is None
        assert len(err.strip().splitlines()) == 1, err
    result = subprocess.run([str(load_client)], capture_output=True, text=True, timeout=10)
    assert result.returncode == 2 and "--port" in result.stderr


def test_load_client_no_verify_is_the_bare_baseline(load_client: Path, tmp_path: Path) -> None:
    """--no-verify skips the byte compare (the baseline for what verification costs): the same
    flipped byte that fails a verifying run goes unnoticed, and the JSON says so."""
    with thread_server(tmp_path / "flip.sock", echo_with(flip_one_byte)) as endpoint:
        args = ("--size", "64", "--duration", "0.3", "--warmup", "0.1")
        code, report, err = run_client(load_client, endpoint, *args, "--no-verify")
    assert code == 0, err
    assert report is not None and report["errors"] == 0 and report["messages"] > 0
    assert report["verify"] is False


def test_busy_epoll_spends_its_cpu_time_on_every_read(tmp_path: Path) -> None:
    # The calibration server's cost per read is CPU time, so it holds on a busy machine too:
    # 4,000 ping-pongs (one read each) cost the server 4,000 x 50 us = 200 ms of CPU for the
    # spin alone, on top of the loop's own (the kernel counts CPU time in 10 ms ticks: hence so
    # many). Without the spin the same ping-pongs cost the loop about 50 ms.
    with running("busy-epoll", unix_endpoint(str(tmp_path / "busy.sock"))) as server:
        proc = psutil.Process(server.pid)
        with connect(server.endpoint, timeout=IO_TIMEOUT) as sock:
            sock.sendall(b"x")
            assert recv_exactly(sock, 1) == b"x"
            before = sum(proc.cpu_times()[:2])
            for _ in range(4000):
                sock.sendall(b"y" * 64)
                assert recv_exactly(sock, 64) == b"y" * 64
            spent = sum(proc.cpu_times()[:2]) - before
        assert spent >= 0.15
        assert server.stop() == 0


def test_busy_us_is_a_bad_option_when_negative() -> None:
    result = run_quiet([*PEERS["busy-epoll"].command[:-2], "--busy-us", "-1", "--port", "0"])
    assert result.returncode == 2 and "Traceback" not in result.stderr
