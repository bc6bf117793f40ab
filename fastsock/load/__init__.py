"""The load generator: ``fastsock load`` and its in-process API :func:`run_load`.

``run_load(LoadConfig(...))`` returns the ``fastsock.load/1`` result dict described in
``fastsock/load/SCHEMA.md``; the harness calls it directly, the CLI prints and saves it.
"""

from fastsock.load.config import ConfigError, LoadConfig, parse_size
from fastsock.load.conn import ConnectError
from fastsock.load.report import SCHEMA
from fastsock.load.run import run_load

__all__ = ["SCHEMA", "ConfigError", "ConnectError", "LoadConfig", "parse_size", "run_load"]
