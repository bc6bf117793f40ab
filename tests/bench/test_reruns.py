"""A round with a disturbed trial runs again, its first runs kept but marked superseded, and
the rerun budget bounds how often; servers restart every restart_every rounds."""

from __future__ import annotations

from pathlib import Path

from bench.matrix.plan import Experiment, Matrix
from bench.matrix.progress import Progress
from bench.matrix.run import Runner


class FakePool:
    def __init__(self) -> None:
        self.generation = 0

    def restart(self) -> None:
        self.generation += 1


def _runner(tmp_path: Path, rerun_limit: int, disturbed_calls: set[int]) -> tuple[Runner, list]:
    settings = {"repeats": 4, "seed": 3, "restart_every": 2, "rerun_limit": rerun_limit,
                "duration": 0.1, "warmup": 0.0}  # fmt: skip
    matrix = Matrix("p", settings, {"unpinned": {}}, [])
    runner = Runner(matrix, tmp_path, tmp_path, Progress(1.0))
    calls: list = []

    def fake_load_run(v, repeat, pool, client="fastsock"):  # noqa: ANN001, ANN202
        n = len(calls)
        calls.append((v, repeat, pool.generation))
        return {"variant": v.as_dict(), "repeat": repeat, "status": "ok",
                "interference": {"disturbed": n in disturbed_calls}}  # fmt: skip

    runner._load_run = fake_load_run  # type: ignore[method-assign]
    return runner, calls


def _exp() -> Experiment:
    params = {"servers": ["fastsock"], "transports": ["unix", "tcp"], "sizes": [64],
              "conns": [1], "depth": [1], "placements": ["unpinned"], "client": "c"}  # fmt: skip
    return Experiment("e", "closed", "size", "t", "q", params)


def test_a_disturbed_block_runs_again_and_is_marked(tmp_path: Path) -> None:
    runner, calls = _runner(tmp_path, rerun_limit=3, disturbed_calls={0})
    out: list = []
    exp = _exp()
    runner._rounds(exp, exp.variants(), FakePool(), out)
    assert len(out) == 2 * 4 + 2  # one block of 2, 4 rounds, round 0 once more
    assert [r.get("superseded", False) for r in out[:4]] == [True, True, False, False]
    assert {r["repeat"] for r in out[:4]} == {0}
    # restart_every = 2: rounds 2 and 3 talked to new instances.
    assert [g for _, rep, g in calls if rep >= 2] == [1] * 4


def test_the_rerun_budget_bounds_the_reruns(tmp_path: Path) -> None:
    runner, _ = _runner(tmp_path, rerun_limit=2, disturbed_calls=set(range(100)))
    out: list = []
    exp = _exp()
    runner._rounds(exp, exp.variants(), FakePool(), out)
    assert sum(bool(r.get("superseded")) for r in out) == 4  # two reruns of a pair
    assert len(out) == 2 * 4 + 4


def test_disturbed_runs_kept_after_the_budget_count_nowhere_and_are_said(fixture_doc: dict) -> None:
    from fastsock.report import summary as S
    from fastsock.report.report import render

    size = next(e for e in fixture_doc["experiments"] if e["name"] == "size")
    for r in size["runs"]:
        r["interference"] = {"other_cores": 0.0, "steal": 0.0, "pressure": 0.01, "disturbed": False}
    hit = size["runs"][0]
    hit["interference"]["disturbed"] = True
    before = len(S.ok_runs(size))
    assert hit not in S.ok_runs(size) and before == len(size["runs"]) - 1
    size["runs"][1]["superseded"] = True
    assert len(S.ok_runs(size)) == before - 1
    text = render(fixture_doc, [])
    assert "**1 trial was still disturbed when the rerun budget ran out and is left out" in text
    assert "1 of " in text and "were run again" in text
