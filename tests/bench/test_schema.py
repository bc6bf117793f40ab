"""The results schema: the fixture and its documented schema agree, and validation bites."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fastsock.report.results import ResultsError, check, load_results, schema, validate


def test_fixture_validates(fixture_doc: dict) -> None:
    assert check(fixture_doc) == []


def test_schema_refs_resolve_and_every_def_is_used() -> None:
    s = schema()
    text = json.dumps(s)
    for name in s["$defs"]:
        assert f'"#/$defs/{name}"' in text, f"$defs/{name} is never referenced"


RUN0 = "experiments", 1, "runs", 0


def _at(d: dict, *keys: object) -> dict:
    for key in keys:
        d = d[key]  # type: ignore[index]
    return d


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.pop("metadata"), "'metadata' is a required property"),
        (lambda d: d.update(schema="other/1"), "'fastsock.bench/1' was expected"),
        (lambda d: d["experiments"][0].update(kind="warp"), "is not one of"),
        (lambda d: d["experiments"][1]["runs"][0]["variant"].update(transport="sctp"), "sctp"),
        (lambda d: _at(d, *RUN0, "variant").update(extra=1), "'extra' was unexpected"),
        (lambda d: d["experiments"][1]["runs"][0].update(repeat=-1), "less than the minimum"),
        (lambda d: _at(d, *RUN0).update(repeat=True), "True is not of type 'integer'"),
        (lambda d: d["experiments"][1]["runs"][0]["load"].pop("msgs_per_s"), "msgs_per_s"),
        (lambda d: _at(d, *RUN0, "load").update(latency_us=5), "latency_us: 5 is not"),
        (lambda d: d["metadata"].update(cpu_count="two"), "'two' is not of type 'integer'"),
        (lambda d: _at(d, *RUN0, "load").update(per_connection={"jain": 0.9}), "'conns' is"),
        (
            lambda d: _at(d, *RUN0, "load").update(
                per_connection={"conns": 2, "min": 1, "p50": 1.5, "max": 2, "jain": 1.2}
            ),
            "1.2 is greater than the maximum of 1",
        ),
    ],
)
def test_validator_reports_each_violation(fixture_doc: dict, mutate, expected: str) -> None:
    mutate(fixture_doc)
    errors = check(fixture_doc)
    assert errors, "a broken document passed validation"
    assert any(expected in e for e in errors), errors


def test_validator_paths_name_the_place() -> None:
    s = {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "number"}}}}
    assert validate({"a": [1, 2.5, "x"]}, s) == ["$.a[2]: 'x' is not of type 'number'"]
    assert validate({"a": [1, True]}, s) == ["$.a[1]: True is not of type 'number'"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ('{"schema": "fastsock.load/1"}', "not a fastsock.bench/1 results file"),
        (
            '{"schema": "fastsock.bench/1"}',
            "invalid results: $: 'profile' is a required property (and 5 more)",
        ),
        ("[1, 2]", "not a fastsock.bench/1 results file"),
    ],
)
def test_load_results_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(ResultsError) as err:
        load_results(path)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_load_results_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="no such file"):
        load_results(tmp_path / "absent.json")
