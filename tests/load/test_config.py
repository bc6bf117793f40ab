"""Parameters: size parsing and the checks that turn nonsense into one-line errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastsock.address import tcp_endpoint
from fastsock.load.config import ConfigError, LoadConfig
from fastsock.units import SizeError, format_size, parse_size

EP = tcp_endpoint("127.0.0.1", 9)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("64", 64),
        ("64B", 64),
        ("4K", 4096),
        ("4k", 4096),
        ("4KiB", 4096),
        ("4KB", 4096),
        ("1M", 1 << 20),
        ("1MiB", 1 << 20),
        ("16M", 16 << 20),
        (" 2 K ", 2048),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "K", "-1", "1.5K", "4X", "4 KiBB", "1e3"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(SizeError):
        parse_size(text)


@given(st.integers(min_value=1, max_value=16 << 20))
def test_format_size_round_trips(size: int) -> None:
    assert parse_size(format_size(size)) == size


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"size": 0}, "--size"),
        ({"size": (16 << 20) + 1}, "--size"),
        ({"conns": 0}, "--conns"),
        ({"conns": 10_001}, "--conns"),
        ({"duration": 0}, "--duration"),
        ({"warmup": -1}, "--warmup"),
        ({"depth": 0}, "--depth"),
        ({"procs": 3, "conns": 2}, "--procs"),
        ({"rate": 0.0}, "--rate"),
        ({"rate": 100.0, "depth": 4}, "--depth"),
        ({"rate": 100.0, "workload": "recv"}, "recv"),
        ({"workload": "ping"}, "--workload"),
    ],
)
def test_validate_rejects(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LoadConfig(endpoint=EP, **overrides).validate()


def test_params_reflect_config() -> None:
    cfg = LoadConfig(endpoint=EP, size=4096, conns=8, rate=500.0).validate()
    params = cfg.params()
    assert params["loop"] == "open"
    assert params["rate"] == 500.0
    assert params["transport"] == "tcp"
    assert params["endpoint"] == "tcp://127.0.0.1:9"
    assert LoadConfig(endpoint=EP).params()["loop"] == "closed"
