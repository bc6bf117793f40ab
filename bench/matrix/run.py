"""``make bench``: run the matrix and write results/bench.json, pyperf files, charts, REPORT.md.

    python -m bench.matrix                      # quick profile (make bench)
    python -m bench.matrix --profile full       # the whole matrix (make bench-full)
    python -m bench.matrix --dry-run            # print the plan and its estimated duration
    python -m bench.matrix --only rtt,size      # some experiments only

Run from the repository root (``bench`` is not an installed package). Every experiment runs
its variants as paired trials, round by round, in a random balanced order (``plan.schedule``):
the variants compared with each other form a block that runs back to back. Servers start on
demand and start afresh every ``restart_every`` rounds, so the trials sample server instances
too. Each measurement runs in its own client process, with the machine's outside load read
around it (fastsock.interference); a round with a disturbed trial runs again (bounded). The
findings (fastsock.report.verdicts) are computed from the runs and stored in bench.json.
Servers are stopped by PID on every path.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import click

from bench.matrix import loadrun, runrtt
from bench.matrix import placement as pl
from bench.matrix.plan import (
    FLOOR_TRANSPORTS,
    MATRIX_FILE,
    Experiment,
    Matrix,
    MatrixError,
    Variant,
    load_matrix,
    schedule,
)
from bench.matrix.progress import Progress
from bench.matrix.servers import ServerPool, tcp6_available
from fastsock import interference
from fastsock import metadata as md
from fastsock.process import ServerStartError
from fastsock.report import SCHEMA_ID
from fastsock.report.results import check
from fastsock.report.verdicts import matrix_findings

RESULTS_NAME = "bench.json"
# Estimated fixed cost of one load run (interpreter start, connecting, JSON) and of a pyperf
# worker process: only for the progress display and --dry-run, never for a result.
LOAD_OVERHEAD_S = 1.0
C_LOAD_OVERHEAD_S = 0.1  # the C load client starts in a millisecond
PYPERF_OVERHEAD_S = 0.5
WORKER_OVERHEAD_S = 0.3


def _est_rtt(size: int) -> float:
    """A rough round-trip time, for estimates only (50 µs + ~1 ms per MiB)."""
    return 50e-6 + size * 1e-9


def est_load(settings: dict, client: str = "fastsock") -> float:
    overhead = C_LOAD_OVERHEAD_S if client == "c" else LOAD_OVERHEAD_S
    return settings["warmup"] + settings["duration"] + overhead


def est_rtt_round(settings: dict, sizes: list[int]) -> float:
    per = [
        WORKER_OVERHEAD_S + (settings["rtt_values"] + settings["rtt_warmups"]) * _est_rtt(z)
        for z in sizes
    ]
    return PYPERF_OVERHEAD_S + settings["rtt_processes"] * sum(per)


def plan(exp: Experiment, settings: dict) -> tuple[int, float]:
    """(measurements, estimated seconds) of one experiment."""
    p, reps = exp.params, settings["repeats"]
    if exp.kind == "rtt":
        groups = len(p["servers"]) * len(p["transports"]) * len(p["placements"])
        return groups * reps, groups * reps * est_rtt_round(settings, p["sizes"])
    n = len(exp.variants())
    if exp.kind == "open":
        n = n + n * len(p["rate_fractions"]) * reps  # calibration + steps
    else:
        n *= reps
    return n, n * est_load(settings, p["client"])


class Runner:
    """Runs experiments of one matrix, writing pyperf files into ``staging``."""

    def __init__(self, matrix: Matrix, staging: Path, tmp: Path, progress: Progress) -> None:
        self.matrix = matrix
        self.settings = matrix.settings
        self.staging = staging
        self.tmp = tmp
        self.progress = progress
        self.seq = 0

    # --- running -----------------------------------------------------------------------------

    def run(self, exp: Experiment) -> dict:
        n, est = plan(exp, self.settings)
        self.progress.begin(exp.name, n, est)
        doc = _empty(exp)
        sock_dir = Path(tempfile.mkdtemp(prefix=f"{exp.name}-", dir=self.tmp))
        with ServerPool(sock_dir) as pool:
            if exp.kind == "rtt":
                self._rtt(exp, pool, doc)
            elif exp.kind == "closed":
                client = self._client_for(exp, pool)
                self._rounds(exp, exp.variants(), pool, doc["runs"], client)
            else:
                self._open(exp, pool, doc)
            doc["notes"] = pool.notes
        self.progress.end()
        return doc

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq - 1

    def _load_run(
        self, v: Variant, repeat: int, pool: ServerPool, client: str = "fastsock"
    ) -> dict:
        spec = self.matrix.placements[v.placement]
        self.progress.step(f"{v.describe()} (round {repeat + 1})")
        run = {"variant": v.as_dict(), "repeat": repeat, "seq": self._next_seq()}
        if v.transport in FLOOR_TRANSPORTS:  # no server: the floor's echo child answers
            with _watch(None, self.settings["outside_cores"]) as seen:
                run.update(loadrun.measure(None, v, self.settings, 0, spec, self.tmp / "load.json"))
            run["interference"] = seen
            self.progress.advance(est_load(self.settings, client))
            return run
        try:
            server = pool.get(v.server, v.transport, pl.server_cpus(spec))
        except ServerStartError as err:
            run.update(status="failed", error=f"server did not start: {err}", load=None, wall_s=0)
        else:
            json_path = self.tmp / "load.json"
            with _watch(server.pid, self.settings["outside_cores"]) as seen:
                run.update(
                    loadrun.measure(
                        server.endpoint, v, self.settings, server.pid, spec, json_path, client
                    )
                )
            run["interference"] = seen
            run["instance"] = pool.generation
        self.progress.advance(est_load(self.settings, client))
        return run

    def _rounds(
        self,
        exp: Experiment,
        variants: list[Variant],
        pool: ServerPool,
        out: list,
        client: str = "fastsock",
    ) -> None:
        """Every round runs each block once; a block with a disturbed trial runs again (its
        first runs stay in the results, marked ``superseded``) while the experiment's rerun
        budget lasts. Servers restart every ``restart_every`` rounds."""
        reruns = 0
        for repeat, round_blocks in self._schedule(exp, variants, pool):
            for block in round_blocks:
                while True:
                    runs = [self._load_run(v, repeat, pool, client) for v in block]
                    out.extend(runs)
                    disturbed = any((r.get("interference") or {}).get("disturbed") for r in runs)
                    if not disturbed or reruns >= self.settings["rerun_limit"]:
                        break
                    reruns += 1
                    for r in runs:
                        r["superseded"] = True
                    self.progress.note(f"outside load seen: running that block again ({reruns})")

    def _schedule(
        self, exp: Experiment, variants: list[Variant], pool: ServerPool
    ) -> Iterator[tuple[int, list[list[Variant]]]]:
        """(round, its blocks in run order) for the experiment's seeded schedule; every
        ``restart_every`` rounds the servers are stopped first, so the next round starts new
        instances."""
        s = self.settings
        order = schedule(variants, exp.sweep, s["repeats"], s["seed"], exp.name)
        for repeat, round_blocks in enumerate(order):
            if repeat and s["restart_every"] and repeat % s["restart_every"] == 0:
                pool.restart()
            yield repeat, round_blocks

    @staticmethod
    def _client_for(exp: Experiment, pool: ServerPool) -> str:
        """The experiment's load generator; the C one only where it could be built."""
        if exp.params["client"] != "c":
            return "fastsock"
        from bench.peers.registry import build_c_peers

        reason = build_c_peers().get("load_client")
        if reason is None:
            return "c"
        pool.notes.append(f"C load client unavailable ({reason}); fastsock load used instead")
        return "fastsock"

    def _open(self, exp: Experiment, pool: ServerPool, doc: dict) -> None:
        """Measure capacity per point (closed loop), then step the offered rate through
        ``rate_fractions`` of the highest capacity, interleaved like any other sweep."""
        doc["calibration"] = []
        steps: list[Variant] = []
        base = exp.variants()
        points: dict[tuple, list[Variant]] = {}
        for v in base:
            points.setdefault((v.server, v.size, v.conns, v.depth, v.placement), []).append(v)
        # Capacity is measured with calibration_depth messages in flight per connection
        # (see the matrix file on why the steps go past 1x of it).
        cal_depth = exp.params["calibration_depth"]
        for key, group in points.items():
            capacity = []
            for v in group:
                cal = Variant(v.server, v.transport, v.size, v.conns, cal_depth, v.placement)
                run = self._load_run(cal, 0, pool)
                doc["calibration"].append(run)
                if run["status"] == "ok" and run["load"]["msgs_per_s"] > 0:
                    capacity.append(run["load"]["msgs_per_s"])
            if not capacity:
                doc["skipped"].append(
                    {
                        "what": " ".join(map(str, key)),
                        "reason": "capacity could not be measured (calibration failed)",
                    }
                )
                continue
            for frac in exp.params["rate_fractions"]:
                rate = float(f"{frac * max(capacity):.2g}")  # 2 significant figures: readable
                steps += [
                    Variant(v.server, v.transport, v.size, v.conns, v.depth, v.placement, rate)
                    for v in group
                ]
        self._rounds(exp, steps, pool, doc["runs"])

    def _rtt(self, exp: Experiment, pool: ServerPool, doc: dict) -> None:
        """One pyperf invocation per (server, transport, placement) per round, all sizes."""
        sizes = exp.params["sizes"]
        merged = {t: self.staging / f"pyperf-{exp.name}-{t}.json" for t in exp.params["transports"]}
        doc["pyperf_files"] = {t: f.name for t, f in merged.items()}
        # One variant per group (the first size) stands for the group in the schedule.
        groups = [v for v in exp.variants() if v.size == sizes[0]]
        est = est_rtt_round(self.settings, sizes)
        for repeat, round_blocks in self._schedule(exp, groups, pool):
            for g in (v for block in round_blocks for v in block):
                spec = self.matrix.placements[g.placement]
                self.progress.step(f"{g.server} {g.transport} {g.placement} (round {repeat + 1})")
                try:
                    server = pool.get(g.server, g.transport, pl.server_cpus(spec))
                except ServerStartError as err:
                    values, error, wall = {}, f"server did not start: {err}", 0.0
                else:
                    values, error, wall = runrtt.measure_round(
                        server.endpoint,
                        g.server,
                        sizes,
                        g.placement,
                        spec,
                        self.settings,
                        self.tmp / "round.json",
                        merged[g.transport],
                    )
                for size in sizes:
                    v = Variant(g.server, g.transport, size, placement=g.placement)
                    ok = size in values
                    doc["runs"].append(
                        {
                            "variant": v.as_dict(),
                            "repeat": repeat,
                            "seq": self._next_seq(),
                            "status": "ok" if ok else "failed",
                            "error": None if ok else error,
                            "wall_s": round(wall, 3),
                            "rtt_us": values.get(size, []),
                            "pyperf_benchmark": runrtt.benchmark_name(g.server, size, g.placement),
                        }
                    )
                self.progress.advance(est)


def prune(matrix: Matrix, only: list[str] | None, peers: dict[str, str | None]) -> None:
    """Drop what cannot run here (missing peers, IPv6, CPUs) and note why in ``skipped``."""
    if only:
        unknown = set(only) - {e.name for e in matrix.experiments}
        if unknown:
            raise MatrixError(f"--only: no experiment named {', '.join(sorted(unknown))}")
        matrix.experiments = [e for e in matrix.experiments if e.name in only]
    no_tcp6 = tcp6_available()
    for exp in matrix.experiments:
        p = exp.params
        for server in [s for s in p["servers"] if peers.get(s)]:
            exp.skipped.append({"what": f"server {server}", "reason": peers[server]})
        for place in list(p["placements"]):
            why = pl.check(place, matrix.placements[place])
            if why:
                exp.skipped.append({"what": f"placement {place}", "reason": why})
        if no_tcp6 and "tcp6" in p["transports"]:
            exp.skipped.append({"what": "transport tcp6", "reason": no_tcp6})
        p["servers"] = [s for s in p["servers"] if not peers.get(s)]
        p["placements"] = [x for x in p["placements"] if not pl.check(x, matrix.placements[x])]
        p["transports"] = [t for t in p["transports"] if not (t == "tcp6" and no_tcp6)]


def runnable(exp: Experiment) -> bool:
    p = exp.params
    return bool(p["servers"] and p["placements"] and p["transports"])


def move_outputs(staging: Path, out: Path) -> list[Path]:
    moved = []
    for f in sorted(staging.iterdir()):
        if f.is_file():
            os.replace(f, out / f.name)
            moved.append(out / f.name)
    return moved


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("--profile", default="quick", help="Matrix profile: quick or full.")
@click.option(
    "--matrix",
    "matrix_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=MATRIX_FILE,
    help="The matrix file.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    help="Folder for bench.json, pyperf files, charts and REPORT.md.",
)
@click.option("--only", default=None, help="Comma-separated experiment names to run.")
@click.option("--repeats", type=click.IntRange(1, 100), default=None, help="Override repeats.")
@click.option(
    "--duration",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Override seconds measured per load run.",
)
@click.option("--warmup", type=click.FloatRange(0), default=None, help="Override warm-up seconds.")
@click.option("--seed", type=int, default=None, help="The trial order's seed (default: random).")
@click.option("--dry-run", is_flag=True, help="Print the plan and estimated time; run nothing.")
@click.option("--no-plot", is_flag=True, help="Write the JSON only (draw later: fastsock plot).")
def main(
    profile: str,
    matrix_path: Path,
    out: Path,
    only: str | None,
    repeats: int | None,
    duration: float | None,
    warmup: float | None,
    seed: int | None,
    dry_run: bool,
    no_plot: bool,
) -> None:
    """Run the benchmark matrix: UNIX vs TCP loopback, fastsock vs its peers."""
    started = time.monotonic()
    _interrupt_on_sigterm()
    meta = md.for_bench()
    try:
        from bench.peers.registry import PEERS, available_peers

        matrix = load_matrix(matrix_path, profile, set(PEERS))
        for key, value in (("repeats", repeats), ("duration", duration), ("warmup", warmup)):
            if value is not None:
                matrix.settings[key] = value
        if seed is not None:
            matrix.settings["seed"] = seed
        if matrix.settings["seed"] is None:  # a fresh order every run, recorded to replay it
            matrix.settings["seed"] = random.SystemRandom().randrange(2**31)
        # Compiles the C peers when their sources changed; a missing compiler is a skip reason.
        peers = available_peers(build=not dry_run)
        prune(matrix, only.split(",") if only else None, peers)
    except MatrixError as err:
        raise click.ClickException(str(err)) from None
    progress_total = 0.0
    with tempfile.TemporaryDirectory(prefix="fsbench-") as tmp:
        staging_parent = Path(tmp)
        staging = staging_parent / "out"
        staging.mkdir()
        for exp in matrix.experiments:
            n, est = plan(exp, matrix.settings) if runnable(exp) else (0, 0.0)
            progress_total += est
            if dry_run:
                click.echo(
                    f"{exp.name:12} {exp.kind:6} {n:4} measurements  ~{est:5.0f} s  "
                    f"{', '.join(exp.params['servers'])}; "
                    f"{', '.join(exp.params['transports'])}"
                )
                for sk in exp.skipped:
                    click.echo(f"{'':12} skipped {sk['what']}: {sk['reason']}")
        if dry_run:
            click.echo(
                f"total ~{progress_total / 60:.1f} min (profile {profile}, "
                f"{matrix.settings['repeats']} repeats)"
            )
            return
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise click.ClickException(f"cannot create {out}: {err.strerror}") from None
        progress = Progress(progress_total)
        runner = Runner(matrix, staging, staging_parent, progress)
        experiments = []
        try:
            with ExitStack() as stack:
                stack.callback(progress.close)
                for exp in matrix.experiments:
                    if not runnable(exp):
                        experiments.append(_empty(exp))
                        continue
                    experiments.append(runner.run(exp))
        except KeyboardInterrupt:
            click.echo("bench: interrupted; servers stopped, nothing written", err=True)
            sys.exit(130)
        meta["duration_s"] = round(time.monotonic() - started, 1)
        doc = {
            "schema": SCHEMA_ID,
            "profile": profile,
            "metadata": meta,
            "settings": matrix.settings,
            "placements": matrix.placements,
            "peers": {
                "available": [n for n, why in peers.items() if why is None],
                "unavailable": {n: why for n, why in peers.items() if why is not None},
            },
            "experiments": experiments,
        }
        doc["findings"] = matrix_findings(doc)
        errors = check(doc)
        if errors:  # a bug in this runner, not a user error: say where
            raise RuntimeError(f"results do not match the schema: {errors[:3]}")
        (staging / RESULTS_NAME).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        written = move_outputs(staging, out)
    for path in written:
        click.echo(f"wrote {path}")
    if not no_plot:
        _draw(doc, out)
    click.echo(f"bench: finished in {time.monotonic() - started:.0f} s")


class _watch:
    """Reads the machine's outside load around one measurement: ``with _watch(pid) as seen``
    fills the dict ``seen`` (fastsock.interference.between) on exit. The trial's own CPU is
    the harness's waited-for children (the client) plus the server's (by PID, if any)."""

    def __init__(self, server_pid: int | None, limit: float) -> None:
        self.pid = server_pid
        self.limit = limit
        self.seen: dict = {}

    def _own(self) -> float | None:
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = ru.ru_utime + ru.ru_stime
        if self.pid is not None:
            import psutil

            try:
                t = psutil.Process(self.pid).cpu_times()
            except psutil.Error:
                return None
            own += t.user + t.system
        return own

    def __enter__(self) -> dict:
        self.own0, self.snap0 = self._own(), interference.snapshot()
        return self.seen

    def __exit__(self, *exc: object) -> None:
        snap1, own1 = interference.snapshot(), self._own()
        own = None if self.own0 is None or own1 is None else own1 - self.own0
        self.seen.update(interference.between(self.snap0, snap1, own, self.limit))


def _interrupt_on_sigterm() -> None:
    """SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so every server is stopped by PID."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _empty(exp: Experiment) -> dict:
    return {
        "name": exp.name,
        "kind": exp.kind,
        "sweep": exp.sweep,
        "title": exp.title,
        "question": exp.question,
        "params": exp.params,
        "runs": [],
        "skipped": exp.skipped,
        "notes": [],
    }


def _draw(doc: dict, out: Path) -> None:
    from fastsock.report.plots import draw_all
    from fastsock.report.report import headlines, write_report

    charts = draw_all(doc, out)
    report = write_report(doc, charts, out, RESULTS_NAME)
    for chart in charts:
        click.echo(f"wrote {out / chart.file}")
    click.echo(f"wrote {report}")
    for line in headlines(doc):
        click.echo("  * " + line.replace("**", ""))


if __name__ == "__main__":
    main()
