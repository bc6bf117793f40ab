"""Load a results file and check it against ``schema.json``."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from fastsock.report import SCHEMA_ID
from fastsock.report.validate import validate


class ResultsError(Exception):
    """A results file that cannot be used; ``str()`` is a one-line message."""


def schema() -> dict:
    """The JSON Schema of a results file (``fastsock/report/schema.json``)."""
    text = resources.files("fastsock.report").joinpath("schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def check(doc: Any) -> list[str]:
    """Every schema violation in ``doc`` (empty when valid)."""
    return validate(doc, schema())


def load_results(path: str | Path) -> dict:
    """Read and validate a results file; raise :class:`ResultsError` on any problem."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ResultsError(f"{path}: cannot read: {err}") from None
    except json.JSONDecodeError as err:
        raise ResultsError(f"{path}: not JSON: {err}") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA_ID:
        found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise ResultsError(f"{path}: not a {SCHEMA_ID} results file (schema: {found!r})")
    errors = check(doc)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ResultsError(f"{path}: invalid results: {errors[0]}{more}")
    return doc
