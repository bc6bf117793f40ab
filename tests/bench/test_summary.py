"""Summaries: medians with spread, ratios paired by repeat, client-bound flags."""

from __future__ import annotations

import pytest

from fastsock.report import summary as S


def run(transport: str, repeat: int, msgs: float, size: int = 64, **cpu: object) -> dict:
    v = {"server": "fastsock", "transport": transport, "size": size, "conns": 8, "depth": 1,
         "placement": "unpinned", "rate": None}  # fmt: skip
    load = {"msgs_per_s": msgs, "mb_per_s": msgs * size / 1e6, "errors": {"total": 0},
            "latency_us": {"p50": 1e6 / msgs, "p90": 2, "p99": 3, "p999": 4, "max": 5},
            "cpu": cpu}  # fmt: skip
    return {"variant": v, "repeat": repeat, "seq": 0, "status": "ok", "error": None,
            "wall_s": 1.0, "load": load}  # fmt: skip


def test_spread() -> None:
    s = S.Spread.of([3.0, None, 1.0, 2.0])
    assert (s.median, s.lo, s.hi, s.n) == (2.0, 1.0, 3.0, 3)
    assert S.Spread.of([None]) is None


def test_ratios_pair_runs_of_the_same_repeat() -> None:
    # Repeat 1 ran on a slower machine moment: both transports halve; the ratio stays 2.
    exp = {"runs": [run("unix", 0, 200), run("tcp", 0, 100), run("unix", 1, 100),
                    run("tcp", 1, 50), run("unix", 2, 220)], "params": {}}  # fmt: skip
    r = S.paired_ratios(exp, "msgs_per_s")
    # Repeat 2 has no TCP partner; two pairs are too few for an interval (no claim).
    assert (r.median, r.lo, r.hi, r.n) == (2.0, 0.0, float("inf"), 2)
    assert S.ratio_text(r) == "2.00× (no CI: 2 pairs)"
    exp["runs"] += [run("tcp", 2, 110)]
    r = S.paired_ratios(exp, "msgs_per_s")
    assert (r.median, r.lo, r.hi, r.n) == (2.0, 2.0, 2.0, 3)  # identical ratios: no width
    inverse = S.paired_ratios(exp, "msgs_per_s", "tcp", "unix")
    assert inverse.median == pytest.approx(0.5)


def test_ratios_do_not_mix_sizes() -> None:
    exp = {"runs": [run("unix", 0, 300, size=64), run("tcp", 0, 100, size=64),
                    run("unix", 0, 20, size=4096), run("tcp", 0, 10, size=4096)],
           "params": {}}  # fmt: skip
    r = S.paired_ratios(exp, "msgs_per_s")
    assert r.n == 2 and r.median == pytest.approx(6**0.5)  # geometric mean of 3 and 2
    assert S.paired_ratios(exp, "msgs_per_s", size=4096).median == 2.0


def test_failed_runs_are_left_out() -> None:
    bad = run("unix", 0, 1e9)
    bad["status"] = "failed"
    exp = {"runs": [bad, run("tcp", 0, 100)], "params": {}}
    assert S.paired_ratios(exp, "msgs_per_s") is None
    assert S.failed_runs(exp) == [bad]


def test_client_bound_from_flag_or_utilisation() -> None:
    assert S.client_bound(run("unix", 0, 1, client_bound=True))
    assert not S.client_bound(run("unix", 0, 1, client_bound=False, client_cpu_util=1.0))
    assert S.client_bound(run("unix", 0, 1, client_cpu_util=0.95, client_cores=1))
    assert not S.client_bound(run("unix", 0, 1, client_cpu_util=0.95, client_cores=2))
    assert not S.client_bound(run("unix", 0, 1))


def test_rtt_metrics_are_percentiles_of_round_trips() -> None:
    r = {"variant": {}, "rtt_us": [float(x) for x in range(1, 101)]}
    assert S.metric(r, "p50_us") == pytest.approx(50.5)
    assert S.metric(r, "p99_us") == pytest.approx(99.01)
    assert S.metric(r, "max_us") == 100.0


def test_saturated() -> None:
    r = run("unix", 0, 900)
    r["variant"]["rate"] = 1000.0
    assert S.saturated(r)
    r["load"]["msgs_per_s"] = 990
    assert not S.saturated(r)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (16, "16 B"),
        (4096, "4 KiB"),
        (65536, "64 KiB"),
        (1 << 20, "1 MiB"),
        (1000, "1000 B"),
    ],  # fmt: skip
)
def test_fmt_size(size: int, text: str) -> None:
    assert S.fmt_size(size) == text
