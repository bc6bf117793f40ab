"""bench.studies.server_speed's --point: one point named on the command line."""

from __future__ import annotations

import argparse

import pytest

from bench.studies.server_speed import Point, parse_point


@pytest.mark.parametrize(
    ("text", "point"),
    [
        ("unix:1M:1", Point("unix", 1 << 20, 1)),
        ("tcp:64:8", Point("tcp", 64, 8)),
        ("unix:64k:1", Point("unix", 65536, 1)),
    ],
)
def test_a_point_is_transport_size_and_depth(text, point):
    assert parse_point(text) == point


@pytest.mark.parametrize("text", ["udp:64:1", "unix:64", "unix:1X:1", "tcp:0:1", "tcp:64:0"])
def test_a_bad_point_is_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_point(text)
