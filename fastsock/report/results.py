"""Load a results file and check it against ``schema.json``."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from fastsock.jsonout import read_document
from fastsock.report import SCHEMA_ID

# A message quotes the offending value: keep a large object from filling the screen.
MAX_MESSAGE = 200


class ResultsError(Exception):
    """A results file that cannot be used; ``str()`` is a one-line message."""


def schema() -> dict:
    """The JSON Schema of a results file (``fastsock/report/schema.json``)."""
    text = resources.files("fastsock.report").joinpath("schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def validate(instance: Any, schema: dict) -> list[str]:
    """Every violation of ``schema`` (JSON Schema 2020-12) in ``instance``, as ``path: message``
    strings with the path written ``$.key[index]``, in document order."""
    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.path])
    return [f"{_path(err.absolute_path)}: {_message(err)}" for err in errors]


def _path(parts: Any) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _message(err: Any) -> str:
    """jsonschema's message, one line and short. For anyOf, what the closest form says is wrong
    (a null-or-object that is a broken object should say what is wrong inside the object)."""
    if err.validator == "anyOf" and err.context:
        depth = len(err.absolute_path)
        # A form whose type matched fails deeper in, or on another keyword than "type".
        typed = [e for e in err.context if e.validator != "type" or len(e.absolute_path) > depth]
        inner = best_match(typed or err.context)
        where = _path(inner.absolute_path)
        return f"matches none of the allowed forms; {where}: {_message(inner)}"
    text = " ".join(err.message.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def check(doc: Any) -> list[str]:
    """Every schema violation in ``doc`` (empty when valid)."""
    return validate(doc, schema())


def load_results(path: str | Path) -> dict:
    """Read and validate a results file; raise :class:`ResultsError` on any problem."""
    path = Path(path)
    doc = read_document(path, json.loads, ResultsError)
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA_ID:
        found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise ResultsError(f"{path}: not a {SCHEMA_ID} results file (schema: {found!r})")
    errors = check(doc)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ResultsError(f"{path}: invalid results: {errors[0]}{more}")
    return doc


def load_beside(results: Path, name: str, schema_id: str) -> dict | None:
    """The JSON file ``name`` in the folder of ``results`` (a bench.json) when it is there and
    says ``schema_id``, else None: how REPORT.md finds the sections of other harnesses."""
    try:
        doc = json.loads((results.parent / name).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) and doc.get("schema") == schema_id else None
