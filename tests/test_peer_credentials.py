"""``--allow-uid`` / ``--allow-gid``: UNIX peers are checked by SO_PEERCRED at accept.

The other users are real: a forked child drops to another uid/gid (we run as root in CI) before
it connects, so the kernel records its credentials, not ours. The listener is in the abstract
namespace on purpose: it has no file permissions, which is exactly where these options matter.
"""

from __future__ import annotations

import grp
import os
import socket
import subprocess
import uuid

import pytest

from tests.conftest import FASTSOCK, parse_stats

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="acting as another uid needs root")

# Child exit codes.
ECHOED, SHUT_OUT, OTHER = 0, 3, 4


def exchange_as(address: bytes | str, uid: int, gid: int) -> tuple[int, int]:
    """Connect as ``uid``/``gid`` from a forked child, send 4 bytes, expect them back.
    Returns (child pid, ECHOED | SHUT_OUT | OTHER)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child; must leave through os._exit whatever happens
        code = OTHER
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(10)
                sock.connect(address)
                try:
                    sock.sendall(b"ping")
                    got = sock.recv(4)
                except (ConnectionResetError, BrokenPipeError):
                    got = b""
                code = ECHOED if got == b"ping" else SHUT_OUT if got == b"" else OTHER
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return pid, os.waitstatus_to_exitcode(status)


def abstract_name() -> str:
    return f"@fastsock-test-{uuid.uuid4().hex[:12]}"


@needs_root
@pytest.mark.timeout(30)
def test_allow_uid_lets_in_listed_users_and_closes_others(serve):
    name = abstract_name()
    server = serve("--unix", name, "--allow-uid", "0", "-v")
    address = b"\0" + name[1:].encode()
    root_pid, root_result = exchange_as(address, 0, 0)
    nobody_pid, nobody_result = exchange_as(address, NOBODY, NOBODY)
    again_pid, again_result = exchange_as(address, 0, 0)  # still serving after a rejection
    assert server.stop() == 0
    stats = parse_stats(server.stderr_text)
    print(f"root: {root_result}, nobody: {nobody_result}; stats {stats}")
    assert root_result == again_result == ECHOED
    assert nobody_result == SHUT_OUT
    assert stats["rejected_peer"] == 1
    assert stats["accepted"] == 3 and stats["closed"] == 2
    # -v names each peer by pid/uid/gid, so an operator can tell who was turned away.
    assert f"peer pid={nobody_pid} uid={NOBODY} gid={NOBODY}: rejected" in server.stderr_text
    assert f"peer pid={root_pid} uid=0 gid=0: accepted" in server.stderr_text


@needs_root
@pytest.mark.timeout(30)
def test_allow_gid_lets_in_a_group_given_by_name(serve):
    name = abstract_name()
    group = grp.getgrgid(NOBODY).gr_name  # "nogroup" on Debian: names are resolved at start
    server = serve("--unix", name, "--allow-gid", group)
    address = b"\0" + name[1:].encode()
    _, nobody_result = exchange_as(address, NOBODY, NOBODY)
    _, root_result = exchange_as(address, 0, 0)
    assert server.stop() == 0
    stats = parse_stats(server.stderr_text)
    print(f"nobody: {nobody_result}, root: {root_result}; stats {stats}")
    assert nobody_result == ECHOED
    assert root_result == SHUT_OUT
    assert stats["rejected_peer"] == 1


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "args",
    [
        ["--port", "0", "--allow-uid", "0"],
        ["--unix", "@x", "--allow-uid", "0,no-such-user-here"],
        ["--unix", "@x", "--allow-gid", "no-such-group-here"],
        ["--unix", "@x", "--allow-uid", ""],  # empty must not mean "everyone"
        ["--unix", "@x", "--allow-uid", "0,"],
    ],
)
def test_bad_allow_lists_are_one_line_usage_errors(args):
    result = subprocess.run([*FASTSOCK, "serve", *args], capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "allow" in result.stderr or "no-such" in result.stderr
