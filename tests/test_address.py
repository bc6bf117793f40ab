"""Endpoint parsing and formatting round-trips; bad endpoints are clear errors."""

from __future__ import annotations

import socket

import pytest

from fastsock.address import (
    EndpointError,
    endpoint_from_options,
    parse_endpoint,
    tcp_endpoint,
    unix_endpoint,
)


@pytest.mark.parametrize(
    "text",
    [
        "tcp://127.0.0.1:8000",
        "tcp://[::1]:9",
        "unix:/run/app.sock",
        "unix:@abstract",
        "unix:rel.sock",
    ],
)
def test_round_trip(text):
    assert str(parse_endpoint(text)) == text


def test_families_and_sockaddrs():
    assert tcp_endpoint("127.0.0.1", 1).family == socket.AF_INET
    assert tcp_endpoint("::1", 1).sockaddr == ("::1", 1, 0, 0)
    assert tcp_endpoint("[::1]", 1).family == socket.AF_INET6
    assert tcp_endpoint("localhost", 5).host == "127.0.0.1"
    assert unix_endpoint("@x").sockaddr == b"\0x"
    assert unix_endpoint("/tmp/a").sockaddr == "/tmp/a"
    assert [e.transport for e in (tcp_endpoint("::1", 1), unix_endpoint("@x"))] == ["tcp6", "unix"]


def test_path_length_limit_is_107_bytes():
    unix_endpoint("/" + "a" * 106)
    with pytest.raises(EndpointError, match="107"):
        unix_endpoint("/" + "a" * 107)
    with pytest.raises(EndpointError, match="107"):
        unix_endpoint("@" + "a" * 107)


@pytest.mark.parametrize(
    "text",
    [
        "http://x",
        "tcp://127.0.0.1",
        "tcp://127.0.0.1:x",
        "unix:",
        "tcp://host.example:80",
        "tcp://\0\0\0\0]:8000",  # found by make fuzz: inet_pton raised ValueError
        "tcp://[::1:80",  # an unclosed bracket
        "tcp://::1:80",  # IPv6 without brackets: ambiguous with the port
        "tcp://[127.0.0.1]:80",
        "tcp://[[::1]]:80",
        "udp://[::1:80",
    ],
)
def test_bad_endpoints(text):
    with pytest.raises(EndpointError):
        parse_endpoint(text)


def test_options():
    assert str(endpoint_from_options("127.0.0.1", 0, None)) == "tcp://127.0.0.1:0"
    assert str(endpoint_from_options("127.0.0.1", None, "@s")) == "unix:@s"
    with pytest.raises(EndpointError, match="not both"):
        endpoint_from_options("127.0.0.1", 1, "/x")
    with pytest.raises(EndpointError):
        endpoint_from_options("127.0.0.1", None, None)
    with pytest.raises(EndpointError, match="NUL"):
        unix_endpoint("a\0b")


def test_error_messages_stay_on_one_line():
    # Found by make fuzz: a path with a newline made a two-line "one-line" error.
    with pytest.raises(EndpointError) as err:
        unix_endpoint("@" + "x\n" * 60)
    assert "\n" not in str(err.value) and "x\\n" in str(err.value)
