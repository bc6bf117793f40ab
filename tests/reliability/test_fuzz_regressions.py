"""Every input in ``tests/reliability/fuzz_regressions/`` -- the fuzzer's seeds and each input
that ever failed a check under ``make fuzz`` -- replayed through the same checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.http_fuzz import replay

INPUTS = sorted((Path(__file__).parent / "fuzz_regressions").iterdir())


def test_there_are_inputs_to_replay():
    assert len(INPUTS) >= 7


@pytest.mark.timeout(30)
@pytest.mark.parametrize("path", INPUTS, ids=[p.name for p in INPUTS])
def test_fuzz_input_replays_cleanly(path):
    replay(path.read_bytes())
