"""Helpers for the ``fastsock ab`` tests: a plan on two endpoints, and fake run records so the
trial logic, the statistics wiring, the JSON and the plot can be tested without sockets."""

from __future__ import annotations

from fastsock.ab.run import AbPlan
from fastsock.address import parse_endpoint
from fastsock.load.config import LoadConfig


def plan(a: str = "unix:/tmp/a.sock", b: str = "tcp://127.0.0.1:8000", **kw: object) -> AbPlan:
    load = LoadConfig(endpoint=parse_endpoint(a), engine="native")
    params: dict = {"trials": 6, "trial_s": 0.1, "warmup": 0.1, "seed": 7}
    params.update(kw)
    return AbPlan(parse_endpoint(a), parse_endpoint(b), load, **params)


def record(
    msgs: float = 1000.0, p50: float | None = 100.0, p99: float | None = 400.0, errors: int = 0
) -> dict:
    """A run record as :func:`fastsock.ab.run.run_record` makes them."""
    return {
        "msgs_per_s": msgs,
        "mb_per_s": msgs * 64 / 1e6,
        "p50_us": p50,
        "p99_us": p99,
        "max_us": None if p99 is None else p99 * 2,
        "messages": int(msgs / 10),
        "errors": errors,
        "error_kinds": {"mismatch": errors} if errors else {},
        "error_samples": ["conn 3: mismatch at byte 17"] if errors else [],
        "client_cpu_util": 0.5,
        "client_bound": False,
        "cpu_pressure": 0.02,
        "wall_s": 0.15,
    }
