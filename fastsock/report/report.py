"""REPORT.md from a results file: findings, charts, tables, machine, method and caveats.

Every figure in the text is computed here from the results document; nothing is typed in by
hand. A reader who never saw the code should understand what ran, on what, and what it means.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from fastsock import findings as F
from fastsock.report import engines, transports
from fastsock.report import summary as S
from fastsock.report import verdicts as V
from fastsock.report.plots import Chart
from fastsock.report.verdict_chart import SECTION as VERDICTS_SECTION


def spread_text(s: S.Spread | None, unit: str = "") -> str:
    """130k (127k–134k) msgs/s."""
    if s is None:
        return "–"
    if s.n == 1 or s.lo == s.hi:
        return f"{S.fmt_num(s.median)}{unit}"
    return f"{S.fmt_num(s.median)} ({S.fmt_num(s.lo)}–{S.fmt_num(s.hi)}){unit}"


def _preferred_server(exp: dict) -> str:
    servers = S.values_of(exp, "server")
    return "fastsock" if "fastsock" in servers else servers[0]


def _fixed(exp: dict, key: str) -> str:
    """'32 connections' when the experiment holds ``key`` at one value."""
    vals = exp["params"].get(key, [])
    if len(vals) != 1:
        return ""
    if key != "conns":
        return S.fmt_size(vals[0])
    depth = exp["params"].get("depth", [1])
    in_flight = f" × {depth[0]} messages in flight" if len(depth) == 1 and depth[0] != 1 else ""
    return f"{vals[0]} connections{in_flight}"


# --- verdicts ---------------------------------------------------------------------------------


def answer_cell(f: dict) -> str:
    """The answer column: the winner in bold, or equivalent, or what the run could detect."""
    text = F.answer(f)
    if F.better(f) is not None and " is faster than " in text:
        winner, rest = text.split(" is faster than ", 1)
        return f"**{winner} is faster** than {rest}"
    if F.better(f) is not None:
        return f"**{text}**"
    return text


def verdict_table(findings: list[dict], first: str = "question") -> list[str]:
    rows = _table(f"{first} | answer | A ÷ B, 95% CI | trials")
    for f in findings:
        rows.append(_row(f["question"], answer_cell(f), F.ratio_text(f), f["n"]))
    return rows


def _summaries(doc: dict) -> list[str]:
    """Sentences that sum several findings up: the engines' and the transports' answers."""
    out = engines.findings(doc)
    exp = S.find_transports(doc)
    if exp is not None:
        out += transports.headlines(exp)
    return out


def headlines(doc: dict) -> list[str]:
    """One sentence per headline finding, in the report's order, then the summaries (what
    make bench prints)."""
    doc = {**doc, "findings": V.matrix_findings(doc)}
    return [
        f"{f['question']}: {F.answer(f)}, {f['a']} ÷ {f['b']} = {F.ratio_text(f)}"
        for f in V.headline(V.findings_of(doc))
    ] + _summaries(doc)


def _aa_lines(findings: list[dict]) -> list[str]:
    aa = [f for f in findings if V.is_aa(f)]
    if not aa:
        return []
    verdicts = ", ".join(
        f"{f['detail']['point'].get('transport', '?')} {F.ratio_text(f)} *{f['verdict']}*"
        for f in aa
    )
    ok = all(f["verdict"] in ("unclear", "equivalent") for f in aa)
    return [
        f"**The harness's own check (A/A):** two identical fastsock servers, compared like any "
        f"other pair: {verdicts}. "
        + (
            "As it must, the check claims no difference."
            if ok
            else "**It claimed a difference between identical servers: treat this run's "
            "verdicts with suspicion** (a 95% CI does this about 1 time in 20 by chance)."
        ),
        "",
    ]


def _interference_lines(doc: dict) -> list[str]:
    runs = [r for e in doc["experiments"] for r in e["runs"] if "interference" in r]
    if not runs:
        return []
    redone = sum(bool(r.get("superseded")) for r in runs)
    kept = [r for r in runs if not r.get("superseded")]
    left_out = sum(bool(r["interference"].get("disturbed")) for r in kept)
    clean = [r for r in kept if not r["interference"].get("disturbed")]
    pressures = [r["interference"]["pressure"] for r in clean if r["interference"].get("pressure")]
    psi = (
        f" Over the trials that count, the median CPU pressure (some task waiting for a CPU, "
        f"the benchmark's own two processes included) was {100 * np.median(pressures):.1f}%."
        if pressures
        else ""
    )
    warn = (
        f" **{left_out} {'trial was' if left_out == 1 else 'trials were'} still disturbed when "
        f"the rerun budget ran out and {'is' if left_out == 1 else 'are'} left out of every "
        "figure**: this run was taken on a busy machine."
        if left_out
        else ""
    )
    return [
        f"**Outside load:** {redone} of {len(runs)} trials were run again because another "
        f"process (or the hypervisor) took CPU during their round.{warn}{psi}",
        "",
    ]


def _verdicts_section(doc: dict, charts: list[Chart]) -> list[str]:
    found = V.findings_of(doc)
    heads = V.headline(found)
    if not heads:
        return ["## Verdicts", "", "No experiment produced paired trials.", ""]
    n = max(f["n"] for f in heads)
    drawn = []
    for c in charts:
        if c.experiment == VERDICTS_SECTION:
            drawn += [f"![{c.title}]({c.file})", "", c.shows, ""]
    summaries = _summaries(doc)
    return [
        "## Verdicts",
        "",
        *verdict_table(heads),
        "",
        f"A ÷ B: the geometric mean of the per-trial ratios of up to {n} paired trials, with "
        "its 95% confidence interval (a bootstrap, fastsock/findings.py). **A is faster** "
        "only where the whole interval says so; *equivalent* where it lies within ±5%; "
        "otherwise the run cannot tell, and says how small a difference it could have "
        "detected. For times (round trips, latency) lower is faster.",
        "",
        *[f"- {line}" for line in summaries],
        *([""] if summaries else []),
        *_aa_lines(found),
        *_interference_lines(doc),
        *drawn,
    ]


# --- tables ------------------------------------------------------------------------------------


def _row(*cells: object) -> str:
    """One Markdown table row: ``| a | b | c |``."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(head: str) -> list[str]:
    """A Markdown table's first two lines from its column names, written ``a | b | c``: the
    head row and the rule under it."""
    return [f"| {head} |", "|" + "---|" * (head.count(" | ") + 1)]


def _groups(exp: dict, key: Callable[[dict], tuple]) -> dict[tuple, list[dict]]:
    """The experiment's good runs grouped by ``key(variant)``, in the order first met."""
    groups: dict[tuple, list[dict]] = {}
    for r in S.ok_runs(exp):
        groups.setdefault(key(r["variant"]), []).append(r)
    return groups


def _bound_text(runs: list[dict]) -> str:
    n = sum(S.client_bound(r) for r in runs)
    return f"**{n}/{len(runs)}**" if n else f"0/{len(runs)}"


def closed_table(exp: dict) -> list[str]:
    rows = _table(
        "server | transport | size | conns | msgs/s | MB/s | p50 µs | p99 µs "
        "| server CPU | client CPU | client-bound"
    )
    groups = _groups(
        exp, lambda v: (v["server"], v["transport"], v["size"], (v["conns"], v.get("depth", 1)))
    )
    order = {t: i for i, t in enumerate(S.TRANSPORT_ORDER)}
    servers = S.values_of(exp, "server")
    for key in sorted(groups, key=lambda k: (servers.index(k[0]), k[2], k[3], order.get(k[1]))):
        runs = groups[key]
        server, t, size, (conns, depth) = key
        in_flight = f" × {depth} in flight" if depth != 1 else ""
        rows.append(
            _row(
                server,
                S.label(t),
                S.fmt_size(size),
                f"{conns}{in_flight}",
                *(spread_text(S.spread(runs, m)) for m in ("msgs_per_s", "mb_per_s")),
                *(spread_text(S.spread(runs, m)) for m in ("p50_us", "p99_us")),
                _cores(S.cpu_util(runs, "server")),
                _cores(S.cpu_util(runs, "client")),
                _bound_text(runs),
            )
        )
    return rows


def _cores(s: S.Spread | None) -> str:
    return "–" if s is None else f"{s.median:.2f}"


def findings_table(doc: dict, exp: dict) -> list[str]:
    """Every finding of one experiment (the verdicts table has only the headline ones)."""
    name = exp["name"]
    found = [f for f in V.findings_of(doc) if (f.get("detail") or {}).get("experiment") == name]
    return verdict_table(found, "comparison") if found else []


def rtt_table(exp: dict) -> list[str]:
    rows = _table(
        "server | transport | size | placement | p50 µs | p90 µs | p99 µs | max µs | round trips"
    )
    groups = _groups(exp, lambda v: (v["server"], v["size"], v["placement"], v["transport"]))
    order = {t: i for i, t in enumerate(S.TRANSPORT_ORDER)}
    places = S.values_of(exp, "placement")
    for key in sorted(groups, key=lambda k: (k[0], k[1], places.index(k[2]), order.get(k[3]))):
        runs = groups[key]
        server, size, place, t = key
        rows.append(
            _row(
                server,
                S.label(t),
                S.fmt_size(size),
                place,
                *(spread_text(S.spread(runs, m)) for m in ("p50_us", "p90_us", "p99_us")),
                S.fmt_num(max(S.metric(r, "max_us") or 0 for r in runs)),
                len(S.pooled_rtt(runs)),
            )
        )
    return rows


def open_table(exp: dict) -> list[str]:
    rows = _table(
        "transport | offered msgs/s | delivered msgs/s | p50 µs | p99 µs | p99.9 µs | saturated"
    )
    runs = S.ok_runs(exp)
    for t in S.values_of(exp, "transport"):
        for rate in sorted({r["variant"]["rate"] for r in S.select(runs, transport=t)}):
            g = S.select(runs, transport=t, rate=rate)
            sat = sum(S.saturated(r) for r in g)
            rows.append(
                _row(
                    S.label(t),
                    S.fmt_num(rate),
                    *(
                        spread_text(S.spread(g, m))
                        for m in ("msgs_per_s", "p50_us", "p99_us", "p999_us")
                    ),
                    f"**{sat}/{len(g)}**" if sat else f"0/{len(g)}",
                )
            )
    return rows


# --- the document ------------------------------------------------------------------------------


def _metadata_rows(doc: dict) -> list[str]:
    m = doc["metadata"]
    pk = ", ".join(f"{k} {v}" for k, v in sorted(m.get("packages", {}).items()) if v)
    rows = [
        "| | |",
        "|---|---|",
        f"| CPU | {m['cpu_model_name']}, {m['cpu_count']} logical CPUs "
        f"(usable: {m.get('cpu_affinity', '?')}) |",
        f"| OS | {m['platform']} (kernel {m['kernel']}) |",
        f"| Python | {m['python_version']} |",
        f"| packages | {pk} |",
        f"| host | {m['hostname']} |",
        f"| date | {m['date']} |",
        f"| run took | {m['duration_s']:.0f} s (profile `{doc['profile']}`) |",
        f"| command | `{m['command_line']}` |",
    ]
    if m.get("git_commit"):
        rows.append(f"| git commit | {m['git_commit']} |")
    if m.get("load_average"):
        rows.append(
            f"| load average at start | {', '.join(f'{x:.2f}' for x in m['load_average'])} |"
        )
    peers = doc["peers"]
    if peers["unavailable"]:
        missing = "; ".join(f"{k}: {v}" for k, v in sorted(peers["unavailable"].items()))
        rows.append(f"| servers not available | {missing} |")
    return rows


def _cal_depth(doc: dict) -> str:
    depths = {
        e["params"].get("calibration_depth") for e in doc["experiments"] if e["kind"] == "open"
    }
    return "/".join(str(d) for d in sorted(depths - {None})) or "several"


def _c_client_method(doc: dict) -> list[str]:
    names = [e["name"] for e in doc["experiments"] if e["params"].get("client") == "c"]
    if not names:
        return []
    return [
        f"- **Closed loop with the C load client** ({', '.join(names)}): the same closed loop "
        "driven by `bench/peers/c/load_client.c`, which verifies every echoed byte but records "
        "no latency (hence the empty latency columns). It needs far less CPU per message than "
        "the servers, so the server sets the pace; `fastsock load` would saturate its own core "
        "first on this machine. Where even the C client is flagged client-bound, the server "
        "(the C reference) was faster still."
    ]


def _method(doc: dict) -> list[str]:
    st = doc["settings"]
    places = "; ".join(
        f"**{name}**: "
        + (
            f"server on CPU {spec['server']}, client on CPU {spec['client']}"
            if spec
            else "no pinning, the scheduler decides"
        )
        for name, spec in doc["placements"].items()
    )
    return [
        "Every server is a separate process that echoes what it receives; the client is a "
        "separate process too (`fastsock load` or the pyperf ping-pong script), so the harness "
        "never shares a process or an interpreter lock with what it measures.",
        "",
        f"- **Closed loop** (`fastsock load`): N connections each keep a message in flight and "
        f"send the next as soon as the echo is back; measures capacity. Each run warms up "
        f"{st['warmup']} s (discarded), then measures {st['duration']} s. Every echoed payload "
        f"is verified.",
        *_c_client_method(doc),
        "- **Open loop** (`fastsock load --rate`): messages are sent on a fixed schedule; "
        "latency counts from when each message was *due*, so a stalled server is charged for "
        "the queue it causes (no coordinated omission). The rate steps are fractions of the "
        f"closed-loop capacity measured just before with {_cal_depth(doc)} messages in flight "
        "per connection (the higher of the transports), so every transport sees the same "
        "offered loads.",
        f"- **Ping-pong RTT** (pyperf): one connection, one message at a time; each pyperf value "
        f"is a single round trip (`--loops 1`), {st.get('rtt_values', '?')} values per worker "
        f"process after {st.get('rtt_warmups', '?')} warm-ups. The pyperf files beside this "
        f"report can be read with `python -m pyperf stats` and `compare_to`.",
        f"- **Paired trials in a random order**: every experiment runs {st['repeats']} rounds; "
        "in each round the variants compared with each other (UNIX and TCP of one point, or "
        "the servers of one point) run back to back, in an order that is random yet balanced "
        "(each goes first equally often), and the points themselves in a fresh random order "
        f"(seed {st.get('seed', '?')}). Drift on a shared machine then hits both sides of a "
        "ratio alike. "
        + (
            f"Every server starts afresh every {st['restart_every']} rounds, so the trials "
            "sample several server instances, not one. "
            if st.get("restart_every")
            else ""
        )
        + "Tables give the median over rounds with the min–max in brackets: a description "
        "of the spread, not an uncertainty.",
        "- **Confidence intervals and verdicts**: each comparison is a finding: the geometric "
        "mean of its per-round ratios with a 95% bootstrap confidence interval (BCa, "
        "`scipy.stats.bootstrap`, widened for small samples). *greater*/*less* when the "
        "interval excludes 1, *equivalent* when it lies within ±5%, else *unclear*. The A/A "
        "pair checks the method itself. `fastsock compare A.json B.json` sets two runs' "
        "findings side by side.",
        "- **Outside load**: around every trial the harness reads the CPU that other "
        "processes used (`/proc/stat` less the server's and the client's own), the steal "
        "time and the CPU pressure (`/proc/pressure/cpu`); a round with a disturbed trial is "
        f"run again, at most {st.get('rerun_limit', '?')} times per experiment.",
        f"- **CPU placement**: {places}.",
        f"- **Client-bound**: a run where the load generator used ≥ "
        f"{S.CLIENT_BOUND_UTIL:.0%} of its CPU. There the client, not the server or the "
        f"transport, set the pace; such points are ringed or hatched in the charts and counted "
        f"in the tables.",
        "- Sizes are payload bytes one way; MB = 10^6 bytes; µs = microseconds.",
    ]


def _caveats(doc: dict) -> list[str]:
    out = []
    all_runs = [r for e in doc["experiments"] for r in S.ok_runs(e) if "load" in r]
    bound = [r for r in all_runs if S.client_bound(r)]
    if bound:
        kinds = sorted(
            {
                f"{r['variant']['server']} {S.label(r['variant']['transport'])} "
                f"{S.fmt_size(r['variant']['size'])} {r['variant']['conns']}c"
                for r in bound
            }
        )
        shown = ", ".join(kinds[:12]) + (" …" if len(kinds) > 12 else "")
        out.append(
            f"**{len(bound)} of {len(all_runs)} load-generator runs were client-bound** "
            f"({shown}). Their throughput is a lower bound on what the server could do, "
            f"and ratios between them partly compare the client with itself."
        )
    else:
        out.append(f"None of the {len(all_runs)} load-generator runs was client-bound.")
    out.append(
        "Noise: only the verdicts are findings. A difference between two table cells that no "
        "verdict backs is within what this run could not tell apart."
    )
    for exp in doc["experiments"]:
        for r in S.failed_runs(exp):
            v = r["variant"]
            out.append(
                f"Failed run in `{exp['name']}` ({v['server']}, {S.label(v['transport'])}, "
                f"{S.fmt_size(v['size'])}, {v['conns']}c): {r['error']}"
            )
        for sk in exp["skipped"]:
            out.append(f"Skipped in `{exp['name']}`: {sk['what']}: {sk['reason']}.")
    cpus = doc["metadata"]["cpu_count"]
    out.append(
        f"This machine has {cpus} logical CPUs shared by server, client and anything "
        "else running (other jobs included); short runs on a shared VM are noisy. "
        "Absolute numbers are facts about this run on this machine; the ratios, measured "
        "back to back, are what carries over."
    )
    return [f"- {c}" for c in out]


def render(
    doc: dict,
    charts: list[Chart],
    results_name: str = "bench.json",
    extra: list[str] | None = None,
) -> str:
    """The whole REPORT.md as text; ``extra`` is a finished section (static files) to add.
    The findings are computed afresh from the runs (the same computation as the stored ones,
    so a report always follows its data)."""
    doc = {**doc, "findings": V.matrix_findings(doc)}
    m = doc["metadata"]
    lines = ["# fastsock benchmark report: UNIX-domain sockets vs TCP loopback", ""]
    if doc.get("fixture"):
        lines += ["> **FIXTURE DATA — invented numbers for tests, not a measurement.**", ""]
    transports = sorted(
        {r["variant"]["transport"] for e in doc["experiments"] for r in e["runs"]},
        key=lambda t: S.TRANSPORT_ORDER.index(t),
    )
    lines += [
        "How fast is local inter-process communication over a UNIX-domain stream socket "
        "(AF_UNIX, addressed by a file name) compared with TCP over the loopback interface "
        "(AF_INET/AF_INET6, addressed by IP and port), and how fast can a pure-Python server "
        f"go? Transports measured: {', '.join(S.label(t) for t in transports)}.",
        "",
        f"Measured by `make bench` (profile `{doc['profile']}`) on {m['hostname']} "
        f"({m['cpu_model_name']}, {m['cpu_count']} CPUs) on {m['date'][:10]}. Redraw this "
        f"report and its charts from the saved data with `fastsock plot {results_name}`.",
        "",
    ]
    lines += _verdicts_section(doc, charts)
    for exp in doc["experiments"]:
        lines += _experiment_section(doc, exp, [c for c in charts if c.experiment == exp["name"]])
    lines += engines.section(doc, charts)
    lines += extra or []
    lines += ["## How it was measured", ""] + _method(doc) + [""]
    lines += ["### Machine", ""] + _metadata_rows(doc) + [""]
    lines += ["## Caveats", ""] + _caveats(doc) + [""]
    lines += [
        "## Reproduce",
        "",
        "```sh",
        "make bench          # quick matrix, a few minutes; make bench-full for the whole matrix",
        f"fastsock plot results/{results_name}   # redraw charts and this report from the JSON",
    ]
    for exp in doc["experiments"]:
        files = exp.get("pyperf_files") or {}
        if "unix" in files and "tcp" in files:
            lines.append(
                f"python -m pyperf compare_to results/{files['tcp']} "
                f"results/{files['unix']}   # {exp['name']}: TCP vs UNIX round trips"
            )
    lines += ["```", ""]
    return "\n".join(lines)


def _experiment_section(doc: dict, exp: dict, charts: list[Chart]) -> list[str]:
    out = [f"## {exp['title']}", "", f"*{exp['question']}*", ""]
    if not S.ok_runs(exp):
        return out + ["No successful runs.", ""]
    for c in charts:
        out += [f"![{c.title}]({c.file})", "", c.shows, ""]
    if S.is_transports(exp):
        return out + transports.section(exp)
    if exp["kind"] == "closed":
        out += closed_table(exp) + [""]
    elif exp["kind"] == "rtt":
        out += rtt_table(exp) + [""]
    else:
        out += open_table(exp) + [""]
    found = findings_table(doc, exp)
    if found:
        out += found + [""]
    return out


def write_report(
    doc: dict, charts: list[Chart], out: Path, results_name: str, results_dir: Path | None = None
) -> Path:
    """Write ``out/REPORT.md``; return its path. With ``http.json`` (``make bench-http``) or
    ``apps.json`` (``make bench-apps``) in ``results_dir``, their charts and sections are added."""
    from fastsock.report import apps, http, replicate, scale

    extra: list[str] = []
    scale_doc = scale.load_beside((results_dir or out) / results_name)
    if scale_doc is not None:
        extra += scale.section(scale_doc, out)
    rep = replicate.load_beside((results_dir or out) / results_name)
    if rep is not None:
        extra += replicate.section(rep)
    http_doc = http.load_beside((results_dir or out) / results_name)
    if http_doc is not None:
        extra += http.section(http_doc, out)
    apps_doc = apps.load_beside((results_dir or out) / results_name)
    if apps_doc is not None:
        extra += apps.section(apps_doc, doc, out)
    path = out / "REPORT.md"
    path.write_text(render(doc, charts, results_name, extra or None), encoding="utf-8")
    return path
