"""``fastsock ab``'s results: the findings, the JSON document and the text summary.

The statistics are :mod:`fastsock.findings`' (one module for the matrix, the report and this
command): per metric, one finding of A ÷ B from the paired per-trial values, with its 95% CI
and verdict. The JSON document (``fastsock.ab/1``, ``fastsock/ab/schema.json``) holds those
findings -- the same records as ``results/bench.json``'s -- plus every trial's values, so a
reader can redo the statistics.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from importlib import resources

from fastsock import metadata
from fastsock.ab.run import SIDES, TRIAL_WARMUP_S, AbPlan, AbRun
from fastsock.findings import EQUIVALENCE, better, finding, ratio_text
from fastsock.units import format_size

SCHEMA = "fastsock.ab/1"
# (finding id suffix, per-run key, metric words, higher is better)
METRICS = (
    ("throughput", "msgs_per_s", "throughput", True),
    ("p50", "p50_us", "p50 latency", False),
    ("p99", "p99_us", "p99 latency", False),
)
BUSY = 0.1  # CPU pressure above this: the machine was busy (bench/studies/agree_load.py)


def unit(plan: AbPlan) -> str:
    return "requests/s" if plan.load.workload == "http" else "msgs/s"


def workload_text(plan: AbPlan) -> str:
    """``echo 64B, 32 conns x depth 1, closed loop`` (or ``http GET /f``, ``open loop at R``)."""
    c = plan.load
    if c.workload == "http":
        what = f"http GET {c.path} ({format_size(c.size)})"
    else:
        what = f"{c.workload} {format_size(c.size)}"
    if c.sock_type != "stream":
        what += f" ({c.sock_type})"
    loop = f"open loop at {c.rate:,.0f} {unit(plan)}" if c.rate is not None else "closed loop"
    procs = f", {c.procs} procs" if c.procs > 1 else ""
    return f"{what}, {c.conns} conns x depth {c.depth}, {loop}{procs}, {c.engine} engine"


def findings(run: AbRun) -> list[dict]:
    """One finding per metric (ids ``ab-throughput``, ``ab-p50``, ``ab-p99``)."""
    plan = run.plan
    a, b = plan.label("a"), plan.label("b")
    out = []
    for name, key, words, higher in METRICS:
        metric = unit(plan) if key == "msgs_per_s" else f"{words} (µs)"
        question = (
            f"Does {a} serve more {unit(plan)} than {b}?"
            if higher
            else f"Is the {words} of {a} lower than that of {b}?"
        )
        out.append(
            finding(
                f"ab-{name}",
                question,
                a,
                b,
                metric,
                run.values("a", key),
                run.values("b", key),
                higher_is_better=higher,
                workload=workload_text(plan),
                seed=plan.seed,
            )
        )
    return out


def _median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def overview(run: AbRun) -> dict:
    """Medians per side, the CPU pressure over the trials' runs, how many were client-bound."""
    runs = [t[s] for t in run.trials for s in SIDES]
    pressures = [r["cpu_pressure"] for r in runs if r["cpu_pressure"] is not None]
    medians = {
        side: {key: _median(run.values(side, key)) for _, key, _, _ in METRICS} for side in SIDES
    }
    return {
        "runs": len(runs),
        "medians": medians,
        "cpu_pressure_median": statistics.median(pressures) if pressures else None,
        "cpu_pressure_max": max(pressures) if pressures else None,
        "client_bound_runs": sum(1 for r in runs if r["client_bound"]),
    }


def params(plan: AbPlan) -> dict:
    """The workload and trial parameters the run used."""
    load = plan.load.params()
    for key in ("endpoint", "transport", "duration", "warmup"):
        load.pop(key, None)
    return {
        **load,
        "type": plan.load.sock_type,
        "trials": plan.trials,
        "trial_s": plan.trial_s,
        "trial_warmup_s": TRIAL_WARMUP_S,
        "warmup_s": plan.warmup,
        "seed": plan.seed,
    }


def document(run: AbRun, found: list[dict], command_line: str | None = None) -> dict:
    """The ``fastsock.ab/1`` JSON document (``fastsock/ab/schema.json``)."""
    plan = run.plan
    return {
        "schema": SCHEMA,
        "status": "ok" if run.error is None else "error",
        "error": run.error.record() if run.error else None,
        "a": {"endpoint": plan.text("a"), "label": plan.label("a")},
        "b": {"endpoint": plan.text("b"), "label": plan.label("b")},
        "params": params(plan),
        "warmup": run.warmup,
        "trials": run.trials,
        "findings": found,
        "overview": overview(run),
        "wall_s": run.wall_s,
        "metadata": metadata.for_load(command_line),
    }


def schema() -> dict:
    """The JSON Schema of the document (``fastsock/ab/schema.json``)."""
    text = resources.files("fastsock.ab").joinpath("schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def verdict_line(f: dict, plan: AbPlan) -> str:
    """One metric in words, e.g. ``A served 1.23× (1.15–1.31) the msgs/s of B: A is better``
    or ``A's p99 latency was 1.02× (0.90–1.15) B's: no clear difference; this run could have
    detected about ±12%``."""
    ratio = ratio_text(f)
    if f["higher_is_better"]:
        head = f"A served {ratio} the {unit(plan)} of B"
        if plan.load.rate is not None:
            head += " (open loop: the offered rate, unless a side fell behind)"
        good = "better"
    else:
        head = f"A's {f['metric'].split(' (')[0]} was {ratio} B's"
        good = "faster"
    side = better(f)
    if side is not None:
        return f"{head}: {side.upper()} is {good}"
    if f["verdict"] == "equivalent":
        return f"{head}: equivalent (the whole CI lies within ±{EQUIVALENCE:.0%})"
    hw = f.get("half_width")
    if hw is None:
        return f"{head}: no clear difference (too few valid trials for a CI)"
    return f"{head}: no clear difference; this run could have detected about ±{hw:.0%}"


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def summary(run: AbRun, found: list[dict]) -> str:
    """The text for humans (stdout): endpoints, workload, trials, one line per metric, the
    medians, the CPU pressure and client-bound runs."""
    plan = run.plan
    ov = overview(run)
    lines = [f"fastsock ab: A {plan.text('a')}  vs  B {plan.text('b')}"]
    if plan.text("a") == plan.text("b"):
        lines.append(
            "  A/A          the same endpoint twice: an honest run says unclear or equivalent"
        )
    lines.append(f"  workload     {workload_text(plan)}")
    warm = f"warm-up {plan.warmup:g} s per endpoint" if plan.warmup else "no warm-up"
    lines.append(
        f"  trials       {len(run.trials)} of {plan.trials} x {plan.trial_s:g} s per side "
        f"(+{TRIAL_WARMUP_S:g} s ramp), paired, random order (seed {plan.seed}); {warm}; "
        f"{run.wall_s:.1f} s in all"
    )
    for f, (_, _, words, _) in zip(found, METRICS, strict=True):
        lines.append(f"  {words:<12} {verdict_line(f, plan)}")
    for side in SIDES:
        m = ov["medians"][side]
        lines.append(
            f"  {side.upper()} median     {_num(m['msgs_per_s'])} {unit(plan)}, "
            f"p50 {_num(m['p50_us'])} µs, p99 {_num(m['p99_us'])} µs"
        )
    lines.append("  " + pressure_line(ov))
    return "\n".join(lines)


def pressure_line(ov: dict) -> str:
    med, top = ov["cpu_pressure_median"], ov["cpu_pressure_max"]
    if med is None:
        text = "CPU          pressure not known (no /proc/pressure/cpu here)"
    else:
        busy = " -- the machine was busy" if med > BUSY else ""
        text = (
            f"CPU          pressure median {med:.2f}, max {top:.2f} (share of a run's wall time "
            f"with some task waiting for a CPU){busy}"
        )
    bound = ov["client_bound_runs"]
    if bound:
        text += f"; the client was CPU-bound in {bound} of {ov['runs']} runs (it measured itself)"
    return text
