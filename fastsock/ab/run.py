"""The trials of ``fastsock ab``: paired, randomized, interleaved, run in this process.

Order of events (shared/benchmarking.md, rules 1 and 2):

1. both endpoints are checked with one connection each (:func:`check_reachable`): an endpoint
   that cannot be reached stops the run before anything is measured;
2. a warm-up on each endpoint (``warmup`` seconds of the same load, discarded);
3. ``trials`` trials; each runs A and B back to back in the order
   :func:`fastsock.trials.ab_order` gives (random, A first in half of them), so a drifting
   machine moves both sides of a pair.

Each side of each trial is one call of :func:`fastsock.load.run.run_load` -- the engine the
``fastsock load`` command runs (native C loop for echo where built) -- with fresh connections,
a short ramp of ``TRIAL_WARMUP_S`` (discarded) and a measured window of ``trial_s``. Calling it
in-process costs ~40 ms per run (connect, close cleanly, build the result), against ~1 s for a
``fastsock load`` process per trial. Around each call the CPU pressure of the machine is read
(:mod:`fastsock.pressure`).

The first trial with an error (a failed verification, a reset, a closed connection, an endpoint
that no longer accepts connections, or no answer at all in a trial) ends the run: a
:class:`TrialError` names the trial and the side.
"""

from __future__ import annotations

import dataclasses
import errno
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fastsock.address import SOCK_TYPES, Endpoint, connect, endpoint_text
from fastsock.load.config import ConfigError, LoadConfig
from fastsock.load.conn import ConnectError
from fastsock.load.http import probe
from fastsock.load.run import resolve_engine, run_load
from fastsock.pressure import cpu_pressure_us, pressure_share
from fastsock.trials import ab_order

SIDES = ("a", "b")
# Each run's own ramp before its window (fresh connections: the server accepts and registers
# them, pipelines fill). Short: the warm-up before the trials did the real warming.
TRIAL_WARMUP_S = 0.05
REACH_TIMEOUT_S = 5.0
MAX_SAMPLES = 3  # error samples kept per run


@dataclass(frozen=True)
class AbPlan:
    """What ``fastsock ab`` runs. ``load`` is the workload (its ``endpoint``, ``duration`` and
    ``warmup`` are replaced per run); ``a`` and ``b`` are the two endpoints."""

    a: Endpoint
    b: Endpoint
    load: LoadConfig
    trials: int = 20
    trial_s: float = 0.5
    warmup: float = 0.5
    seed: int = 0

    def endpoint(self, side: str) -> Endpoint:
        return self.a if side == "a" else self.b

    def text(self, side: str) -> str:
        """The endpoint of ``side`` as the ready line writes it."""
        return endpoint_text(self.endpoint(side), SOCK_TYPES[self.load.sock_type])

    def label(self, side: str) -> str:
        """``A (unix:/run/app.sock)``."""
        return f"{side.upper()} ({self.text(side)})"

    def config(self, side: str, duration: float, warmup: float) -> LoadConfig:
        return dataclasses.replace(
            self.load, endpoint=self.endpoint(side), duration=duration, warmup=warmup
        )

    def validate(self) -> AbPlan:
        """Raise :class:`ConfigError` for nonsense; resolve ``engine=auto`` once (so a missing
        native engine is said once, not per run). Returns the plan to run."""
        if self.trials < 1:
            raise ConfigError(f"--trials must be at least 1, not {self.trials}")
        if self.trial_s <= 0 or self.warmup < 0:
            raise ConfigError("--trial-s must be > 0 and --warmup >= 0")
        for side in SIDES:
            self.config(side, self.trial_s, TRIAL_WARMUP_S).validate()
        load = dataclasses.replace(self.load, engine=resolve_engine(self.config("a", 1.0, 0.0)))
        return dataclasses.replace(self, load=load)


class Unreachable(Exception):
    """An endpoint could not be reached before the trials; ``str()`` is one line."""


@dataclass(frozen=True)
class TrialError:
    """What stopped the run: ``trial`` is 1-based, 0 for the warm-up before the trials."""

    trial: int
    side: str
    endpoint: str
    message: str

    def text(self, trials: int) -> str:
        where = "warm-up" if self.trial == 0 else f"trial {self.trial} of {trials}"
        return f"{where}, side {self.side.upper()} ({self.endpoint}): {self.message}"

    def record(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class AbRun:
    """The outcome: the warm-up and trial records, and the error that ended it early, if any."""

    plan: AbPlan
    warmup: dict[str, dict] = field(default_factory=dict)
    trials: list[dict] = field(default_factory=list)
    error: TrialError | None = None
    wall_s: float = 0.0

    def values(self, side: str, key: str) -> list[float | None]:
        """``key`` of ``side`` in every trial, trial by trial (paired with the other side's)."""
        return [t[side][key] for t in self.trials]


def check_reachable(plan: AbPlan) -> AbPlan:
    """One connection to each endpoint (stream and seqpacket; a datagram endpoint has no
    connection to try: its warm-up tells), and for ``--http`` the probe GET ``fastsock load``
    makes (200 with a Content-Length). Raises :class:`Unreachable`; A and B answering the same
    GET with different bodies is one too (the comparison would not be of the same work).
    Returns the plan, for http with ``size`` set to the body's length."""
    sock_type = SOCK_TYPES[plan.load.sock_type]
    if plan.load.sock_type == "dgram":
        return plan
    bodies = []
    for side in SIDES:
        try:
            connect(plan.endpoint(side), REACH_TIMEOUT_S, sock_type).close()
            if plan.load.workload == "http":
                assert plan.load.path is not None
                target = probe(plan.endpoint(side), plan.load.path, REACH_TIMEOUT_S)
                bodies.append((target.length, target.crc))
        except ConnectError as err:
            raise Unreachable(f"{plan.label(side)}: {err}") from None
        except OSError as err:
            reason = err.strerror.lower() if err.strerror else str(err) or type(err).__name__
            if err.errno == errno.EPROTOTYPE:
                reason = f"it is not a {plan.load.sock_type} socket (see --type)"
            raise Unreachable(f"{plan.label(side)}: cannot connect: {reason}") from None
    if not bodies:
        return plan
    (a_len, a_crc), (b_len, b_crc) = bodies
    if (a_len, a_crc) != (b_len, b_crc):
        raise Unreachable(
            f"A and B answer GET {plan.load.path} with different bodies ({a_len} B, CRC-32 "
            f"{a_crc:08x} vs {b_len} B, {b_crc:08x}): serve the same file on both"
        )
    return dataclasses.replace(plan, load=dataclasses.replace(plan.load, size=a_len))


def run_record(result: dict, pressure: float | None, wall_s: float) -> dict:
    """The per-run values ``fastsock ab`` keeps from a ``fastsock.load/1`` result."""
    lat = result["latency_us"] or {}
    has_lat = bool(lat.get("count"))
    errors = result["errors"]
    return {
        "msgs_per_s": result["msgs_per_s"],
        "mb_per_s": result["mb_per_s"],
        "p50_us": lat["p50"] if has_lat else None,
        "p99_us": lat["p99"] if has_lat else None,
        "max_us": lat["max"] if has_lat else None,
        "messages": result["messages"],
        "errors": errors["total"],
        "error_kinds": {k: v for k, v in errors.items() if k != "total" and v},
        "error_samples": result["error_samples"][:MAX_SAMPLES],
        "client_cpu_util": result["cpu"]["client_cpu_util"],
        "client_bound": result["cpu"]["client_bound"],
        "cpu_pressure": pressure,
        "wall_s": round(wall_s, 4),
    }


def measure(config: LoadConfig) -> dict:
    """One run of the load engine; its record (see :func:`run_record`). Raises
    :class:`ConnectError` when the endpoint cannot be reached."""
    psi0, t0 = cpu_pressure_us(), time.monotonic()
    result = run_load(config)
    wall = time.monotonic() - t0
    return run_record(result, pressure_share(psi0, cpu_pressure_us(), wall), wall)


def problem(record: dict, duration: float) -> str | None:
    """Why a run cannot be used, in one line, or None."""
    if record["errors"]:
        kinds = ", ".join(f"{k} {v}" for k, v in record["error_kinds"].items())
        first = f": {record['error_samples'][0]}" if record["error_samples"] else ""
        hint = ""
        if any("Connection: close" in e for e in record["error_samples"]):
            hint = " (the server ends keep-alive connections; nginx: raise keepalive_requests)"
        return f"{record['errors']} error(s) ({kinds}){first}{hint}"
    if not record["messages"]:
        return f"no answer at all in {duration:g} s"
    return None


def _still_there(plan: AbPlan, side: str) -> str:
    """After an error: a note when the endpoint no longer accepts connections."""
    if plan.load.sock_type == "dgram":
        return ""
    try:
        connect(plan.endpoint(side), 1.0, SOCK_TYPES[plan.load.sock_type]).close()
    except OSError as err:
        return f"; it no longer accepts connections ({(err.strerror or str(err)).lower()})"
    return ""


def _one(plan: AbPlan, side: str, trial: int, duration: float, warmup: float) -> dict:
    """One run of ``side``; raises :class:`_Stop` with the :class:`TrialError` on a problem."""
    try:
        record = measure(plan.config(side, duration, warmup))
    except ConnectError as err:
        if trial == 0:
            raise Unreachable(f"{plan.label(side)}: {err}") from None
        raise _Stop(TrialError(trial, side, plan.text(side), f"{err}")) from None
    why = problem(record, duration)
    if why is not None:
        msg = why + _still_there(plan, side)
        raise _Stop(TrialError(trial, side, plan.text(side), msg))
    return record


class _Stop(Exception):
    """Ends the trials: carries what went wrong where."""

    def __init__(self, error: TrialError) -> None:
        super().__init__(error.message)
        self.error = error


def run_ab(plan: AbPlan, progress: Callable[[], None] | None = None) -> AbRun:
    """Check, warm up, run the trials (see the module's docstring). ``progress`` is called
    after each run (2 warm-ups + 2 per trial). Raises :class:`Unreachable` before the trials;
    errors during them end the run early with ``AbRun.error`` set."""
    tick = progress or (lambda: None)
    start = time.monotonic()
    plan = check_reachable(plan)
    out = AbRun(plan)
    try:
        for side in SIDES:
            if plan.warmup > 0:
                out.warmup[side] = _one(plan, side, 0, plan.warmup, 0.0)
            tick()
        for i, order in enumerate(ab_order(plan.trials, plan.seed), start=1):
            trial: dict = {"trial": i, "order": list(order), "t_s": time.monotonic() - start}
            for side in order:
                trial[side] = _one(plan, side, i, plan.trial_s, TRIAL_WARMUP_S)
                tick()
            trial["t_s"] = round(trial["t_s"], 3)
            out.trials.append(trial)
    except _Stop as stop:
        out.error = stop.error
    out.wall_s = round(time.monotonic() - start, 3)
    return out
