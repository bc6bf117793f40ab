"""The options ``fastsock load`` and ``fastsock ab`` share, declared once.

Both commands build a :class:`fastsock.load.config.LoadConfig`, so an option they share must have
the same name, range and default in both; only the help may say it in the command's own terms.
``@option("depth")`` declares ``--depth`` as below; ``@option("depth", help="...")`` with this
command's words. (docs/cli.md is generated from the commands, so it shows what this declares.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from click.core import ParameterSource

from fastsock.load.config import ENGINES, MAX_CONNS, MAX_DEPTH, MAX_PROCS, MAX_VERIFY_EVERY

SOCK_TYPE = click.Choice(["stream", "seqpacket", "dgram"])

# name -> (the option's declarations, its keyword arguments).
_OPTIONS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "conns": (("--conns",), {"type": click.IntRange(1, MAX_CONNS), "default": 32}),
    "depth": (("--depth",), {"type": click.IntRange(1, MAX_DEPTH), "default": 1}),
    "rate": (("--rate",), {"type": click.FloatRange(0, min_open=True), "default": None}),
    "procs": (("--procs",), {"type": click.IntRange(1, MAX_PROCS), "default": 1}),
    "http": (("--http", "http_path"), {"metavar": "PATH", "default": None}),
    "verify-every": (
        ("--verify-every",),
        {"type": click.IntRange(1, MAX_VERIFY_EVERY), "default": 1, "metavar": "K"},
    ),
    "type": (("--type", "sock_type"), {"type": SOCK_TYPE, "default": "stream"}),
    "engine": (("--engine",), {"type": click.Choice(ENGINES), "default": "auto"}),
    "json": (("--json", "json_out"), {"metavar": "FILE|-", "default": None}),
    "quiet": (("-q", "--quiet"), {"is_flag": True}),
    "verbose": (("-v", "--verbose"), {"is_flag": True}),
}

# The help where both commands say the same.
_HELP = {
    "conns": "Connections.",
    "engine": "native: the hot loop in C (echo, send, recv), built by the install; python: the "
    "pure-Python loop; auto: native when it was built (else Python, with a note on stderr). "
    "The JSON records which ran (params.engine).",
    "json": "Write the JSON result.",
    "procs": "Load worker processes (their results merged).",
    "quiet": "No summary and no progress display.",
    "verbose": "Log connection errors as they happen.",
}


def option(name: str, help: str | None = None) -> Callable[[Callable], Callable]:
    """The shared declaration of option ``name``, with ``help`` in this command's words (the
    shared help where there is one)."""
    decls, kwargs = _OPTIONS[name]
    text = help if help is not None else _HELP[name]
    return click.option(*decls, **kwargs, help=text)


def given(ctx: click.Context, name: str) -> bool:
    """The user set option ``name`` (not its default)."""
    return ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)
