"""Real servers over UNIX vs TCP: ``python -m bench.apps --out results/apps.json``.

Runs every app of the profile in bench/apps/matrix.toml that is installed here (Redis,
PostgreSQL, the nginx -> fastsock proxy, the veth container path); an app whose package is
missing, or that cannot start, is skipped with the reason in the results' ``skipped`` list and
on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

from bench.apps.parsers import ParseError
from bench.apps.redis_pg import run_postgres, run_redis
from bench.apps.servers import AppError
from bench.apps.stats import paired_ratios, summarize
from fastsock import metadata
from fastsock.findings import ratio_text
from fastsock.report.apps import attach_findings

SCHEMA = "fastsock.apps_bench/1"
MATRIX = Path(__file__).with_name("matrix.toml")


def load_matrix(path: Path = MATRIX) -> dict:
    with open(path, "rb") as f:
        return tomllib.load(f)


def app_runners() -> dict[str, Callable[[dict, int, Callable[[str], None]], list[dict]]]:
    from bench.apps.proxy import run_proxy
    from bench.apps.veth import run_container

    return {
        "redis": run_redis,
        "postgres": run_postgres,
        "proxy": run_proxy,
        "container": run_container,
    }


def run(profile: str, apps: list[str], quiet: bool = False) -> dict:
    started = time.monotonic()
    spec = load_matrix()[profile]

    def log(line: str) -> None:
        if not quiet:
            print(line, file=sys.stderr, flush=True)

    rows: list[dict] = []
    skipped: list[str] = []
    for name, runner in app_runners().items():
        if name not in apps or name not in spec:
            continue
        try:
            rows += runner(spec[name], spec["repeats"], log)
        except (AppError, ParseError) as err:
            skipped.append(f"{name}: {err}")
            log(f"skipped {name}: {err}")
    meta = metadata.for_bench()
    meta["duration_s"] = round(time.monotonic() - started, 1)
    notes = []
    if any(r["client_bound"] for r in rows):
        notes.append(
            "some runs were client-bound (the load tool at >= 90% of a core): there the "
            "client, not the link, set the pace, which squeezes UNIX / TCP towards 1"
        )
    doc = {
        "schema": SCHEMA,
        "metadata": meta,
        "parameters": {"profile": profile, "apps": apps, "matrix": spec},
        "skipped": skipped,
        "notes": notes,
        "runs": rows,
        "summary": summarize(rows),
        # UNIX / TCP for every app; veth / TCP (loopback) for the container path.
        "ratios": paired_ratios(rows) + paired_ratios(rows, "veth", "tcp"),
    }
    # Each ratio as a finding: a 95% CI of its paired repeats and a verdict (issue 22).
    findings = attach_findings(doc)["findings"]
    for r in doc["ratios"]:
        del r["finding"]  # stored once, in the top-level list
    doc["findings"] = findings
    return doc


def print_report(doc: dict) -> None:
    print("\nratios (geometric mean of per-repeat ratios, 95% CI, verdict):")
    for r, f in zip(doc["ratios"], doc["findings"], strict=True):
        bound = ", ".join(
            f"{k} client-bound {v}/{r['n']}" for k, v in r["client_bound"].items() if v
        )
        print(
            f"  {r['ratio']:9} {r['app']:9} {r['case']:20} "
            f"{ratio_text(f)} {f['verdict']}" + (f"  [{bound}]" if bound else "")
        )
    for line in doc["skipped"]:
        print(f"skipped: {line}")
    for note in doc["notes"]:
        print(f"note: {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.apps", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--profile", default="quick", help="a profile of bench/apps/matrix.toml")
    parser.add_argument(
        "--apps",
        default="redis,postgres,proxy,container",
        help="comma-separated subset of redis,postgres,proxy,container",
    )
    parser.add_argument("--out", required=True, help="JSON results file")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    profiles = [k for k, v in load_matrix().items() if isinstance(v, dict)]
    if args.profile not in profiles:
        parser.error(f"unknown profile {args.profile!r} (one of {', '.join(profiles)})")
    apps = [a for a in args.apps.split(",") if a]
    bad = [a for a in apps if a not in app_runners()]
    if bad or not apps:
        parser.error(f"unknown app(s): {', '.join(bad) or '(none given)'}")
    doc = run(args.profile, apps, args.quiet)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print_report(doc)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
