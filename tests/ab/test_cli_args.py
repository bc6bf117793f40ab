"""``fastsock ab``'s command line: every endpoint form parses, every bad one is one line naming
the accepted forms (exit 2), as are other usage errors and unreachable endpoints."""

from __future__ import annotations

import socket
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from fastsock.ab.cli import FORMS, EndpointType, Target
from fastsock.cli import main
from tests.load.conftest import free_tcp_port


@pytest.mark.parametrize(
    ("text", "family", "where"),
    [
        ("unix:/run/app.sock", socket.AF_UNIX, "/run/app.sock"),
        ("unix:relative/app.sock", socket.AF_UNIX, "relative/app.sock"),
        ("unix:@name", socket.AF_UNIX, "@name"),
        ("tcp://127.0.0.1:8000", socket.AF_INET, ("127.0.0.1", 8000)),
        ("tcp://localhost:8000", socket.AF_INET, ("127.0.0.1", 8000)),
        ("tcp://[::1]:8000", socket.AF_INET6, ("::1", 8000)),
        ("udp://127.0.0.1:9000", socket.AF_INET, ("127.0.0.1", 9000)),
    ],
)
def test_every_ready_line_form_parses(text: str, family: int, where: object) -> None:
    target = EndpointType().convert(text, None, None)
    assert isinstance(target, Target) and target.text == text
    ep = target.endpoint
    assert ep.family == family
    assert (ep.path if ep.is_unix else (ep.host, ep.port)) == where


BAD = [
    ("foo", "must be tcp://HOST:PORT, udp://HOST:PORT, unix:PATH or unix:@NAME"),
    ("/run/app.sock", "must be tcp://"),
    ("http://127.0.0.1:80", "must be tcp://"),
    ("tcp://::1:80", "goes in brackets"),
    ("tcp://127.0.0.1", "needs a port"),
    ("tcp://127.0.0.1:http", "needs a port"),
    ("tcp://127.0.0.1:70000", "out of range"),
    ("tcp://127.0.0.1:0", "port 0"),
    ("tcp://example.com:80", "is not an IPv4 or IPv6 address"),
    ("tcp://[::g]:80", "is not an IPv4 or IPv6 address"),
    ("unix:", "path is empty"),
    ("unix:@", "path is empty"),
    ("unix:/" + "x" * 120, "longer than the kernel limit"),
]


def _run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(main, ["ab", *args])


def _one_line(result: click.testing.Result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("fastsock ab: ")
    return lines[0]


@pytest.mark.parametrize(("text", "why"), BAD)
@pytest.mark.parametrize("position", ["A", "B"])
def test_a_bad_endpoint_is_one_line_naming_the_forms(text: str, why: str, position: str) -> None:
    good = "unix:/tmp/app.sock"
    args = (text, good) if position == "A" else (good, text)
    line = _one_line(_run(*args))
    assert why in line
    assert f"'{position}'" in line
    # The accepted forms, once: the parser's own words or ab's list, not both.
    if why != "port 0":
        assert (FORMS in line) != ("must be tcp://" in line or "goes in brackets" in line)


@pytest.mark.parametrize(
    ("args", "why"),
    [
        ((), "Missing argument 'A'"),
        (("unix:/tmp/a.sock",), "Missing argument 'B'"),
        (("unix:/tmp/a.sock", "unix:/tmp/b.sock", "--bogus"), "No such option"),
        (("unix:/tmp/a.sock", "unix:/tmp/b.sock", "--trials", "2"), "--trials"),
        (("unix:/tmp/a.sock", "unix:/tmp/b.sock", "--size", "0"), "--size must be 1 B"),
        (("unix:/tmp/a.sock", "unix:/tmp/b.sock", "--http", "/f", "--size", "1K"), "--size is"),
        (("unix:/tmp/a.sock", "unix:/tmp/b.sock", "--http", "nope"), "/"),
        (("unix:/tmp/a.sock", "unix:/tmp/b.sock", "--rate", "100", "--depth", "2"), "--depth"),
        (("unix:/tmp/a.sock", "tcp://127.0.0.1:1", "--type", "seqpacket"), "seqpacket"),
        (("unix:/tmp/a.sock", "udp://127.0.0.1:1", "--type", "stream"), "datagram endpoint"),
    ],
)
def test_usage_errors_are_one_line(args: tuple[str, ...], why: str) -> None:
    assert why in _one_line(_run(*args))


def test_unreachable_endpoints_are_one_line_before_any_trial(tmp_path) -> None:
    missing = f"unix:{tmp_path}/none.sock"
    refused = f"tcp://127.0.0.1:{free_tcp_port()}"
    line = _one_line(_run(missing, refused))
    assert line.startswith(f"fastsock ab: A ({missing}): cannot connect")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(tmp_path / "a.sock"))
        listener.listen()
        line = _one_line(_run(f"unix:{tmp_path}/a.sock", refused))
    assert line == f"fastsock ab: B ({refused}): cannot connect: connection refused"


def test_the_real_command_says_one_line_and_exits_2(tmp_path) -> None:
    """Through ``python -m fastsock`` (the lazily registered command): no traceback."""
    refused = f"tcp://127.0.0.1:{free_tcp_port()}"
    proc = subprocess.run(
        [sys.executable, "-m", "fastsock", "ab", f"unix:{tmp_path}/x.sock", refused],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "cannot connect" in proc.stderr


def test_ab_is_listed_and_imported_lazily() -> None:
    """``fastsock serve`` must not import numpy/scipy (threads slow a server): ab is lazy."""
    code = (
        "import sys; import fastsock.cli; "
        "assert 'fastsock.ab' not in sys.modules and 'numpy' not in sys.modules; "
        "from fastsock.cli import main; print(main.list_commands(None))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    assert "'ab'" in out
