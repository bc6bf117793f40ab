"""Fixtures for the harness tests: the hand-made results fixture and a copy to write beside."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_RESULTS = FIXTURES / "results.json"
TINY_MATRIX = FIXTURES / "tiny.toml"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fixture_doc() -> dict:
    """The FIXTURE results (invented numbers), freshly loaded so a test may modify it."""
    return json.loads(FIXTURE_RESULTS.read_text(encoding="utf-8"))


@pytest.fixture
def fixture_copy(tmp_path: Path) -> Path:
    """The fixture results file copied into an empty folder."""
    dest = tmp_path / "results" / "bench.json"
    dest.parent.mkdir()
    shutil.copy(FIXTURE_RESULTS, dest)
    return dest
