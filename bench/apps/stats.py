"""Medians with min-max and UNIX / TCP ratios paired by repeat, over the rows of a run."""

from __future__ import annotations

import statistics

from fastsock.report.summary import spread_record as spread


def _key(row: dict) -> tuple:
    return (row["app"], row["case"])


def summarize(rows: list[dict]) -> list[dict]:
    """Per app, case and transport: the main metric's median (min-max) and latency medians."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((*_key(r), r["transport"]), []).append(r)
    out = []
    for (app, case, transport), rs in groups.items():
        lat_keys = sorted(set.intersection(*(set(r["latency_ms"]) for r in rs)))
        out.append(
            {
                "app": app,
                "case": case,
                "transport": transport,
                "metric": rs[0]["metric"],
                "value": spread([r["value"] for r in rs]),
                "latency_ms": {
                    k: statistics.median(r["latency_ms"][k] for r in rs) for k in lat_keys
                },
                "client_bound_runs": sum(r["client_bound"] for r in rs),
                "errors": sum(r.get("errors", 0) for r in rs),
            }
        )
    return out


def paired_ratios(rows: list[dict], num: str = "unix", den: str = "tcp") -> list[dict]:
    """``num`` / ``den`` of the main metric per app and case, paired within each repeat."""
    index = {(*_key(r), r["transport"], r["repeat"]): r for r in rows}
    out = []
    for app, case in dict.fromkeys(_key(r) for r in rows):
        values, bound = [], {num: 0, den: 0}
        for rep in sorted({r["repeat"] for r in rows}):
            a, b = index.get((app, case, num, rep)), index.get((app, case, den, rep))
            if a is None or b is None or b["value"] <= 0:
                continue
            values.append(a["value"] / b["value"])
            bound[num] += a["client_bound"]
            bound[den] += b["client_bound"]
        if values:
            params = next(r["params"] for r in rows if _key(r) == (app, case))
            out.append(
                {
                    "app": app,
                    "case": case,
                    "ratio": f"{num}/{den}",
                    "params": params,
                    **spread(values),
                    "client_bound": bound,
                }
            )
    return out
