"""`fastsock load --type dgram|seqpacket`: every datagram verified, loss, duplication,
reordering and corruption counted exactly, a lost answer never hangs the closed loop."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from fastsock.address import Endpoint, tcp_endpoint, unix_endpoint
from fastsock.load import run_load
from fastsock.load.config import ConfigError
from fastsock.load.datagram import HEADER, DatagramEngine, connect_datagram
from fastsock.native import load_engine_module
from fastsock.process import ServerProcess
from tests.conftest import assert_one_line_error
from tests.load.conftest import FASTSOCK, quick_config


def start(tmp_path, kind: str, transport: str) -> ServerProcess:
    where = ["--unix", str(tmp_path / f"{kind}.sock")] if transport == "unix" else ["--port", "0"]
    return ServerProcess([*FASTSOCK, "serve", *where, "--type", kind])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", ["unix", "udp"])
@pytest.mark.parametrize("loop", ["closed", "open"])
def test_dgram_echo_run_is_clean_and_counted(tmp_path, transport, loop):
    with start(tmp_path, "dgram", transport) as server:
        extra = {"depth": 4} if loop == "closed" else {"rate": 2000.0}
        config = quick_config(server.endpoint, sock_type="dgram", size=512, **extra)
        result = run_load(config)
    dg = result["datagrams"]
    assert result["params"]["type"] == "dgram"
    assert result["params"]["transport"] == ("unix" if transport == "unix" else "udp")
    assert result["errors"]["total"] == 0, result["error_samples"]
    assert dg["answered"] == result["messages"] > 0
    assert dg["corrupted"] == dg["duplicated"] == 0
    if transport == "unix":
        assert dg["lost"] == 0  # the kernel never drops a UNIX datagram
    assert dg["answered"] + dg["lost"] <= dg["sent"]
    assert result["latency_us"]["count"] >= dg["answered"]


class Mangler:
    """A UNIX datagram echo server that, by sequence number, drops every 5th datagram,
    answers every 7th twice, flips a byte of every 11th and holds every 13th back until the
    next one is answered (reordering). It records what it did to each."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.endpoint = unix_endpoint(path)
        self.dropped: list[int] = []
        self.doubled: list[int] = []
        self.flipped: list[int] = []
        self.held: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        held = None
        while not self.stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            seq, _ = HEADER.unpack_from(data)
            if seq % 5 == 0:
                self.dropped.append(seq)
                continue
            if seq % 11 == 0:
                self.flipped.append(seq)
                data = data[:-1] + bytes([data[-1] ^ 0xFF])
            if seq % 13 == 0 and held is None:
                self.held.append(seq)
                held = (data, addr)
                continue
            try:
                self.sock.sendto(data, addr)
                if seq % 7 == 0:
                    self.doubled.append(seq)
                    self.sock.sendto(data, addr)
                if held is not None:
                    self.sock.sendto(*held)
                    held = None
            except OSError:
                return  # the client has gone: the run is over

    def __enter__(self) -> Mangler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.mark.timeout(60)
def test_loss_duplication_corruption_and_reordering_are_counted(tmp_path):
    with Mangler(str(tmp_path / "m.sock")) as server:
        socks = connect_datagram(server.endpoint, 1)
        engine = DatagramEngine(
            server.endpoint, socks, size=100, depth=4, rate=None, warmup=0.0, duration=1.0,
            loss_timeout=0.05,
        )  # fmt: skip
        result = engine.run(time.monotonic_ns())
        time.sleep(0.1)
    dg = result["datagrams"]
    # Sequence numbers still in flight when the window closed are not settled yet: allow the
    # window's depth of slack on each count, never more, never a surplus.
    slack = 4
    dropped, flipped = len(server.dropped), len(server.flipped)
    assert dropped > 10, "too short a run to say anything"
    # Every copy of a flipped answer is corrupted, and its datagram, never validly answered, is
    # lost; an answer held back past the loss timeout is lost first and late when it comes.
    corrupt_copies = flipped + len(set(server.doubled) & set(server.flipped))
    assert corrupt_copies - slack <= dg["corrupted"] <= corrupt_copies
    assert dropped + flipped - slack <= dg["lost"] - dg["late"] <= dropped + flipped
    # The first answer of a doubled datagram counts; the second is the duplicate.
    doubled = [s for s in server.doubled if s not in server.flipped]
    assert len(doubled) - slack <= dg["duplicated"] <= len(doubled)
    # A held-back answer arrives after a later one: reordered, or late if it waited too long.
    held = [s for s in server.held if s not in server.flipped]
    assert len(held) - slack <= dg["reordered"] + dg["late"] <= len(held)
    # The closed loop kept going past every loss: without a timeout that re-arms the window,
    # the 4 slots would all be lost by the 4th dropped datagram (sequence 15) and sending stop.
    assert dg["sent"] > 60
    # Over UNIX every one of these is an error.
    assert sum(result["errors"].values()) > 0


@pytest.mark.timeout(60)
@pytest.mark.parametrize("engine", ["python", "native"])
def test_seqpacket_load_is_clean(tmp_path, engine):
    """Both engines run seqpacket (every message whole and verified). That the native one
    sends exactly one message per send is proven in tests/test_floor.py, whose echo child
    checks each message's length."""
    if engine == "native" and load_engine_module()[0] is None:
        pytest.skip("the native engine was not built here")
    with start(tmp_path, "seqpacket", "unix") as server:
        config = quick_config(
            server.endpoint, sock_type="seqpacket", size=4096, depth=4, engine=engine
        )
        result = run_load(config)
    assert result["params"]["type"] == "seqpacket"
    assert result["params"]["engine"] == engine
    assert result["errors"]["total"] == 0
    assert result["messages"] > 0


def test_native_seqpacket_is_refused_above_its_read_size(tmp_path):
    config = quick_config(
        unix_endpoint(str(tmp_path / "x.sock")),
        sock_type="seqpacket",
        size=300_000,
        engine="native",
    )
    with pytest.raises(ConfigError, match="up to 256 KiB"):
        config.validate()


def run_load_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FASTSOCK, "load", *args], capture_output=True, text=True, timeout=30)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--port", "9", "--type", "dgram", "--size", "70000"], "to 65507 B, UDP's limit"),
        (["--port", "9", "--type", "dgram", "--size", "8"], "12 B (the sequence header)"),
        (["--port", "9", "--type", "seqpacket"], "--type seqpacket needs a UNIX socket"),
        (["--port", "9", "--type", "dgram", "--procs", "2", "--conns", "2"], "--procs 1"),
    ],
)
def test_datagram_usage_errors(args, fragment):
    assert_one_line_error(run_load_cli(*args), fragment)


@pytest.fixture
def unix_size_limit() -> Iterator[int]:
    from fastsock.load.limits import max_size

    yield max_size(unix_endpoint("/tmp/x"))


@pytest.mark.timeout(30)
def test_unix_size_limit_is_measured_and_enforced(unix_size_limit, tmp_path):
    assert 64 * 1024 < unix_size_limit < 64 * 1024 * 1024
    result = run_load_cli("--unix", str(tmp_path / "x"), "--type", "dgram", "--size",
                          str(unix_size_limit + 1))  # fmt: skip
    assert result.returncode == 2 and "SO_SNDBUF" in result.stderr


def test_udp_endpoint_text() -> None:
    ep: Endpoint = tcp_endpoint("127.0.0.1", 5000)
    config = quick_config(ep, sock_type="dgram")
    assert config.params()["endpoint"] == "udp://127.0.0.1:5000"
