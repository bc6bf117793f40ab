"""Socket activation: ``fastsock serve`` takes the listening socket systemd passes as fd 3.

No systemd here: the tests do what it does. They bind and listen, then exec the server with the
socket as fd 3, ``LISTEN_FDS=1`` and ``LISTEN_PID`` set to the pid of the exec'd process (the
launcher below sets it to its own pid and execs, which keeps the pid).
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess

import pytest

from fastsock.address import connect
from fastsock.process import ServerProcess
from tests.conftest import FASTSOCK, parse_stats

# The example units live in docs/serve.md (socket activation).
UNITS_DOC = os.path.join(os.path.dirname(os.path.dirname(__file__)), "docs", "serve.md")

# Put the socket at fd 3, set the LISTEN_* variables for this very pid, then exec the server.
LAUNCHER = """
import os, sys
fd, count = int(sys.argv[1]), sys.argv[2]
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS=count)
os.execv(sys.argv[3], sys.argv[3:])
"""


def activate(sock: socket.socket, *serve_args: str, count: str = "1") -> list[str]:
    """The argv that starts ``fastsock serve`` the way systemd would, with ``sock`` as fd 3."""
    return [FASTSOCK[0], "-c", LAUNCHER, str(sock.fileno()), count, *FASTSOCK, "serve"] + list(
        serve_args
    )


def unix_listener(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(16)
    return sock


def echo_once(server: ServerProcess, payload: bytes = b"activated") -> bytes:
    with connect(server.endpoint, timeout=10) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := sock.recv(4096):
            got += chunk
    return got


@pytest.mark.timeout(30)
def test_unix_socket_is_taken_automatically_and_its_file_left_to_systemd(tmp_path):
    path = str(tmp_path / "act.sock")
    with unix_listener(path) as listener:
        argv = activate(listener, "-v")
        with ServerProcess(argv, pass_fds=[listener.fileno()]) as server:
            assert str(server.endpoint) == f"unix:{path}"
            assert echo_once(server) == b"activated"
            assert server.stop() == 0
        # systemd created the file and removes it: the server must not.
        assert os.path.exists(path)
    stats = parse_stats(server.stderr_text)
    print(f"activated UNIX server: {stats}")
    assert stats["accepted"] == stats["closed"] == 1


@pytest.mark.timeout(30)
@pytest.mark.parametrize("workers", ["1", "2"])
def test_tcp_socket_with_systemd_flag_and_workers(workers):
    with socket.create_server(("127.0.0.1", 0), backlog=16) as listener:
        port = listener.getsockname()[1]
        argv = activate(listener, "--systemd", "--workers", workers)
        with ServerProcess(argv, pass_fds=[listener.fileno()]) as server:
            assert str(server.endpoint) == f"tcp://127.0.0.1:{port}"
            for i in range(4):
                assert echo_once(server, b"x" * i + b"y") == b"x" * i + b"y"
            assert server.stop() == 0
    lines = [line for line in server.stderr_text.splitlines() if "stats" in line]
    assert len(lines) == int(workers)


@pytest.mark.timeout(30)
def test_allow_uid_applies_to_an_activated_abstract_socket():
    name = f"fastsock-test-act-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(b"\0" + name.encode())
        listener.listen(16)
        argv = activate(listener, "--systemd", "--allow-uid", str(os.geteuid() + 1))
        with ServerProcess(argv, pass_fds=[listener.fileno()]) as server:
            assert str(server.endpoint) == f"unix:@{name}"
            # We are not on the list: closed at accept (an EOF, or a reset if our bytes had
            # arrived unread).
            try:
                got = echo_once(server)
            except (ConnectionResetError, BrokenPipeError):
                got = b""
            assert got == b""
            assert server.stop() == 0
    assert parse_stats(server.stderr_text)["rejected_peer"] == 1


def run_serve(argv: list[str], pass_fds: tuple[int, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=20,
        pass_fds=pass_fds,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.timeout(30)
def test_systemd_flag_without_a_socket_is_a_one_line_error():
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
    result = subprocess.run(
        [*FASTSOCK, "serve", "--systemd"], capture_output=True, text=True, timeout=20, env=env
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "no socket passed" in result.stderr


@pytest.mark.timeout(30)
def test_wrong_sockets_are_one_line_errors(tmp_path):
    with unix_listener(str(tmp_path / "a.sock")) as listener:
        fd = listener.fileno()
        two = run_serve(activate(listener, "--systemd", count="2"), (fd,))
        with_port = run_serve(activate(listener, "--systemd", "--port", "0"), (fd,))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as unbound:
        fd = unbound.fileno()
        not_listening = run_serve(activate(unbound, "--systemd"), (fd,))
    assert two.returncode == 2 and "LISTEN_FDS=2" in two.stderr
    assert with_port.returncode == 2 and "--systemd" in with_port.stderr
    assert not_listening.returncode == 2 and "not a listening" in not_listening.stderr
    for result in (two, with_port, not_listening):
        assert "Traceback" not in result.stderr


@pytest.mark.timeout(30)
@pytest.mark.parametrize("family", ["udp", "unix"])
def test_an_activated_datagram_socket_is_served_with_type_dgram(tmp_path, family):
    if family == "udp":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(tmp_path / "dg.sock"))
    with (
        sock,
        ServerProcess(activate(sock, "--type", "dgram"), pass_fds=(sock.fileno(),)) as server,
    ):
        with socket.socket(sock.family, socket.SOCK_DGRAM) as client:
            client.settimeout(10)
            if family == "unix":
                client.bind(str(tmp_path / "client.sock"))  # a name to be answered at
            client.sendto(b"one datagram", sock.getsockname())
            assert client.recv(100) == b"one datagram"
        assert server.stop() == 0
    assert parse_stats(server.stderr_text)["datagrams_in"] == 1


@pytest.mark.timeout(30)
def test_a_socket_of_another_type_than_asked_is_a_one_line_error(tmp_path):
    with unix_listener(str(tmp_path / "s.sock")) as listener:
        as_dgram = run_serve(activate(listener, "--type", "dgram"), (listener.fileno(),))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        as_stream = run_serve(activate(udp), (udp.fileno(),))
    assert as_dgram.returncode == 2 and "not a datagram socket" in as_dgram.stderr
    assert as_stream.returncode == 2 and "not a listening stream socket" in as_stream.stderr
    for result in (as_dgram, as_stream):
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def readme_units() -> dict[str, str]:
    """The example units in docs/serve.md: ```ini blocks whose first line names the unit file."""
    with open(UNITS_DOC) as f:
        text = f.read()
    units = {}
    for block in re.findall(r"```ini\n(.*?)```", text, re.S):
        first, _, body = block.partition("\n")
        units[first.strip("# ").strip()] = body
    return units


def unit_value(unit: str, key: str) -> str:
    match = re.search(rf"^{key}=(.*)$", unit, re.M)
    assert match, f"no {key}= in unit"
    return match.group(1).strip()


@pytest.mark.timeout(30)
def test_readme_example_units_work_as_systemd_would_run_them(tmp_path):
    units = readme_units()
    socket_unit, service_unit = (
        units["/etc/systemd/system/fastsock.socket"],
        units["/etc/systemd/system/fastsock.service"],
    )
    listen_path = unit_value(socket_unit, "ListenStream")
    assert listen_path.startswith("/")
    mode = int(unit_value(socket_unit, "SocketMode"), 8)
    exec_start = shlex.split(unit_value(service_unit, "ExecStart"))
    assert exec_start[:2] == ["/usr/local/bin/fastsock", "serve"]
    args = exec_start[2:]
    # Stand-ins for what only systemd and this machine's users provide: the socket in tmp_path,
    # our own uid in the allow list (the unit's user may not exist here).
    args = [str(os.geteuid()) if a == "www-data" else a for a in args]
    path = str(tmp_path / os.path.basename(listen_path))
    with unix_listener(path) as listener:
        os.chmod(path, mode)
        with ServerProcess(activate(listener, *args), pass_fds=[listener.fileno()]) as server:
            assert str(server.endpoint) == f"unix:{path}"
            assert echo_once(server) == b"activated"
            assert server.stop() == 0
    print(f"docs/serve.md units: {exec_start} on {listen_path} (mode {mode:o})")
