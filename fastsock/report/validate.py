"""A small JSON Schema validator: the subset ``schema.json`` uses, so jsonschema is not needed.

Supported keywords: type, enum, const, properties, required, additionalProperties, items,
minItems, minimum, anyOf, $ref (local ``#/$defs/...`` only). Anything else is ignored, as the
JSON Schema spec says unknown keywords are; description/title are documentation.
"""

from __future__ import annotations

from typing import Any

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    # bool is an int in Python but not a number in JSON.
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
}


def validate(instance: Any, schema: dict) -> list[str]:
    """Every violation of ``schema`` in ``instance``, as ``path: message`` strings."""
    errors: list[str] = []
    _check(instance, schema, schema, "$", errors)
    return errors


def _resolve(ref: str, root: dict) -> dict:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $ref is supported, not {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _check(value: Any, schema: dict, root: dict, path: str, errors: list[str]) -> None:
    if "$ref" in schema:
        _check(value, _resolve(schema["$ref"], root), root, path, errors)
        return
    if "anyOf" in schema:
        found = [_sub_errors(value, sub, root, path) for sub in schema["anyOf"]]
        if all(found):
            # Explain with the form whose type matched (a null-or-object that is a broken
            # object should say what is wrong inside the object).
            typed = [f for f in found if not f[0].startswith(f"{path}: expected ")] or found
            errors.append(f"{path}: matches none of the allowed forms; {min(typed, key=len)[0]}")
        return
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: must be {schema['const']!r}, is {value!r}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[name](value) for name in names):
            errors.append(f"{path}: expected {' or '.join(names)}, got {type(value).__name__}")
            return
    if _TYPES["number"](value) and "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{path}: {value} is below the minimum {schema['minimum']}")
    if isinstance(value, dict):
        _check_object(value, schema, root, path, errors)
    elif isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{path}: needs at least {schema['minItems']} items")
        if "items" in schema:
            for i, item in enumerate(value):
                _check(item, schema["items"], root, f"{path}[{i}]", errors)


def _check_object(value: dict, schema: dict, root: dict, path: str, errors: list[str]) -> None:
    for key in schema.get("required", []):
        if key not in value:
            errors.append(f"{path}: missing required key {key!r}")
    props = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in props:
            _check(item, props[key], root, f"{path}.{key}", errors)
        elif extra is False:
            errors.append(f"{path}: unexpected key {key!r}")
        elif isinstance(extra, dict):
            _check(item, extra, root, f"{path}.{key}", errors)


def _sub_errors(value: Any, schema: dict, root: dict, path: str) -> list[str]:
    errors: list[str] = []
    _check(value, schema, root, path, errors)
    return errors
