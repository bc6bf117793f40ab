"""Byte sizes on the command line: ``64``, ``4K``/``4KiB``/``4KB``, ``1M``/``1MiB``.

Suffixes are binary (K = 1024) because the sizes here are buffer and message sizes, not
marketing figures. Shared by ``fastsock serve`` and ``fastsock load``.
"""

from __future__ import annotations

import re

import click

_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kKmMgG](?:i?[bB])?|[bB])?\s*$")
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


class SizeError(ValueError):
    """Not a size; ``str()`` is a one-line message."""


def parse_size(text: str | int) -> int:
    """Bytes from ``64``, ``64B``, ``4K``/``4KiB``/``4KB``, ``1M``/``1MiB``."""
    if isinstance(text, int):
        return text
    match = _SIZE_RE.match(text)
    if not match:
        raise SizeError(f"size {text!r} is not a number of bytes like 64, 4K, 1MiB")
    unit = (match.group(2) or "")[:1].lower()
    return int(match.group(1)) * _UNITS[unit]


def format_size(size: int) -> str:
    """``65536`` -> ``64KiB``; the short name charts and summaries use."""
    for unit, factor in (("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"


class SizeType(click.ParamType):
    """A click option type for :func:`parse_size`."""

    name = "BYTES"

    def convert(
        self, value: str | int, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        try:
            return parse_size(value)
        except SizeError as err:
            self.fail(str(err), param, ctx)
