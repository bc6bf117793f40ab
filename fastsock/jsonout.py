"""``--json FILE|-``: one writer for every command that prints a JSON document, and one reader
for the documents the commands read back (results files, the matrix's TOML)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_json(doc: object, target: str, indent: int = 2) -> None:
    """Write ``doc`` to the file ``target``, or to stdout for ``-`` (UTF-8, a newline at the
    end). Raises OSError when the file cannot be written: the caller says so in one line."""
    text = json.dumps(doc, indent=indent, ensure_ascii=False) + "\n"
    if target == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with open(target, "w", encoding="utf-8") as f:
        f.write(text)


def write_json_or_exit(doc: object, target: str, prog: str, indent: int = 2) -> None:
    """:func:`write_json`, or the one-line error ``PROG: cannot write FILE: why`` on stderr and
    exit status 2: how every command's ``--json`` fails."""
    try:
        write_json(doc, target, indent)
    except OSError as err:
        print(f"{prog}: cannot write {target}: {err.strerror or err}", file=sys.stderr)
        sys.exit(2)


def read_document(
    path: str | Path, parse: Callable[[str], Any], error: type[Exception], what: str = "JSON"
) -> Any:
    """``parse`` of the UTF-8 text of ``path``; a missing, unreadable or unparsable file raises
    ``error`` with one line that names the file and says which (``what``: the format's name)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise error(f"{path}: cannot read: {getattr(err, 'strerror', None) or err}") from None
    try:
        return parse(text)
    except ValueError as err:  # json.JSONDecodeError and tomllib.TOMLDecodeError both are
        raise error(f"{path}: not {what}: {err}") from None
