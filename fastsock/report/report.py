"""REPORT.md from a results file: findings, charts, tables, machine, method and caveats.

Every figure in the text is computed here from the results document; nothing is typed in by
hand. A reader who never saw the code should understand what ran, on what, and what it means.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastsock.report import engines, transports
from fastsock.report import summary as S
from fastsock.report.plots import Chart
from fastsock.report.summary import ratio_text

# A ratio whose whole min-max range lies within this band of 1.0 is reported as "no difference".
PARITY_BAND = 0.05


def spread_text(s: S.Spread | None, unit: str = "") -> str:
    """130k (127k–134k) msgs/s."""
    if s is None:
        return "–"
    if s.n == 1 or s.lo == s.hi:
        return f"{S.fmt_num(s.median)}{unit}"
    return f"{S.fmt_num(s.median)} ({S.fmt_num(s.lo)}–{S.fmt_num(s.hi)}){unit}"


def verdict(r: S.Spread) -> str:
    """clear: every repeat on one side of 1; level: all within PARITY_BAND of 1; mixed: the
    repeats disagree about which transport won."""
    if r.lo > 1.0 + PARITY_BAND or r.hi < 1.0 - PARITY_BAND:
        return "clear"
    if r.lo >= 1.0 - PARITY_BAND and r.hi <= 1.0 + PARITY_BAND:
        return "level"
    return "mixed"


def judge(r: S.Spread, clear: str, level: str, mixed: str) -> str:
    """The sentence for a ratio by its :func:`verdict`; ``{r}`` in it becomes the ratio."""
    return {"clear": clear, "level": level, "mixed": mixed}[verdict(r)].format(r=ratio_text(r))


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


# --- headline findings -------------------------------------------------------------------------


def _closed_size_findings(exp: dict) -> list[str]:
    out = []
    server = _preferred_server(exp)
    sizes = S.values_of(exp, "size")
    conns = _fixed(exp, "conns")
    for size in dict.fromkeys([sizes[0], sizes[-1]]):
        r = S.paired_ratios(exp, "msgs_per_s", server=server, size=size)
        if r is None:
            continue
        where = f"at {S.fmt_size(size)}, {conns} ({server} server, {r.n} paired repeats)"
        kind = verdict(r)
        if kind == "clear":
            out.append(
                f"UNIX sockets delivered **{ratio_text(r)}** the messages/s of TCP "
                f"loopback {where}."
            )
        elif kind == "level":
            out.append(
                f"UNIX and TCP loopback were level {where}: UNIX ÷ TCP messages/s = "
                f"{ratio_text(r)}."
            )
        else:
            out.append(
                f"UNIX ÷ TCP messages/s {where} was {ratio_text(r)}: the repeats disagree "
                f"on the winner, so this run does not settle it (see Caveats on noise)."
            )
    return out


def _rtt_findings(exp: dict) -> list[str]:
    out = []
    server = _preferred_server(exp)
    sizes = S.values_of(exp, "size")
    for size in dict.fromkeys([sizes[0], sizes[-1]]):
        runs = S.select(S.ok_runs(exp), server=server, size=size)
        u = S.spread(S.select(runs, transport="unix"), "p50_us")
        t = S.spread(S.select(runs, transport="tcp"), "p50_us")
        r = S.paired_ratios(exp, "p50_us", "tcp", "unix", server=server, size=size)
        if u is None or t is None or r is None:
            continue
        judged = judge(
            r,
            clear="TCP took **{r}** as long",
            level="the two were level (TCP ÷ UNIX {r})",
            mixed="TCP ÷ UNIX was {r}: the repeats disagree on the winner",
        )
        out.append(
            f"Ping-pong on one connection at {S.fmt_size(size)} ({server} server): median "
            f"round trip {S.fmt_num(u.median)} µs over UNIX vs {S.fmt_num(t.median)} µs over "
            f"TCP; paired by repeat, {judged}."
        )
    return out


def _conns_findings(exp: dict) -> list[str]:
    server = _preferred_server(exp)
    ratios = {
        c: S.paired_ratios(exp, "msgs_per_s", server=server, conns=c)
        for c in S.values_of(exp, "conns")
    }
    ratios = {c: r for c, r in ratios.items() if r is not None}
    if not ratios:
        return []
    lo = min(ratios, key=lambda c: ratios[c].median)
    hi = max(ratios, key=lambda c: ratios[c].median)
    return [
        f"Across {min(ratios)}–{max(ratios)} connections at {_fixed(exp, 'sizes')} "
        f"({server}), the UNIX ÷ TCP messages/s ratio ran from {ratio_text(ratios[lo])} "
        f"at {_conns(lo)} to {ratio_text(ratios[hi])} at {_conns(hi)}."
    ]


def _conns(n: int) -> str:
    return "1 connection" if n == 1 else f"{n} connections"


def _server_findings(exp: dict) -> list[str]:
    out = []
    runs = S.ok_runs(exp)
    names = S.values_of(exp, "server")
    if "fastsock" not in names or len(names) < 2:
        return out
    depths = S.values_of(exp, "depth")
    points = [
        (size, depth, t)
        for size in S.values_of(exp, "size")
        for depth in depths
        for t in S.values_of(exp, "transport")
    ]
    for size, depth, t in points:
        where = {"size": size, "depth": depth, "transport": t}
        med = {n: S.spread(S.select(runs, server=n, **where), "msgs_per_s") for n in names}
        med = {n: s for n, s in med.items() if s is not None}
        if "fastsock" not in med or len(med) < 2:
            continue
        ranked = sorted(med, key=lambda n: -med[n].median)
        # The best *other* server: fastsock's io_uring engine is fastsock too (its own line).
        others = [n for n in ranked if n not in S.ENGINES]
        if not others:
            continue
        best_peer = others[0]
        share = med["fastsock"].median / med[best_peer].median
        bound = [
            n
            for n in ("fastsock", best_peer)
            if any(S.client_bound(r) for r in S.select(runs, server=n, **where))
        ]
        note = (
            f" Client-bound runs for {' and '.join(bound)}: the load generator, not the "
            "server, set that pace, so the server may be faster than shown."
            if bound
            else ""
        )
        in_flight = f", {depth} in flight per connection" if len(depths) > 1 else ""
        out.append(
            f"{S.fmt_size(size)} over {S.label(t)}{in_flight}: fastsock ranked "
            f"{ranked.index('fastsock') + 1} of {len(ranked)} servers with "
            f"{S.fmt_num(med['fastsock'].median)} msgs/s, {share:.0%} of the fastest "
            f"peer ({best_peer}, {S.fmt_num(med[best_peer].median)}).{note}"
        )
        if "fastsock-uring" in med:
            out.append(_uring_finding(exp, where, med, best_peer))
    return out


def _uring_finding(exp: dict, where: dict, med: dict[str, S.Spread], best_peer: str) -> str:
    """The io_uring engine at one point: its rate, and paired ratios to uvloop (the target in
    issue #12), the best other peer and the epoll engine."""
    refs = dict.fromkeys(n for n in ("uvloop-protocol", best_peer, "fastsock") if n in med)
    parts = []
    for ref in refs:
        r = S.paired_ratios(exp, "msgs_per_s", "fastsock-uring", ref, "server", **where)
        if r is not None:
            parts.append(f"{ratio_text(r)} {S.server_label(ref)}")
    return (
        f"{S.fmt_size(where['size'])} over {S.label(where['transport'])}, "
        f"{where['depth']} in flight: fastsock (io_uring) "
        f"{S.fmt_num(med['fastsock-uring'].median)} msgs/s, "
        + ", ".join(parts)
        + " (paired by repeat)."
    )


def _placement_findings(exp: dict) -> list[str]:
    places = S.values_of(exp, "placement")
    if not {"same-core", "cross-core"} <= set(places):
        return []
    metric = "p50_us" if exp["kind"] == "rtt" else "msgs_per_s"
    server = _preferred_server(exp)
    out = []
    for size in S.values_of(exp, "size"):
        for t in S.values_of(exp, "transport"):
            where = {"server": server, "transport": t, "size": size}
            if metric == "p50_us":
                r = S.paired_ratios(exp, metric, "cross-core", "same-core", "placement", **where)
                clear = "cross-core round trips took **{r}** as long as same-core ones"
                ratio = "cross-core ÷ same-core round-trip time"
            else:
                r = S.paired_ratios(exp, metric, "same-core", "cross-core", "placement", **where)
                clear = "same-core runs delivered **{r}** the messages/s of cross-core ones"
                ratio = "same-core ÷ cross-core messages/s"
            if r is not None:
                judged = judge(
                    r,
                    clear=clear,
                    level=f"same core and cross core were level ({ratio} {{r}})",
                    mixed=f"{ratio} was {{r}}: the repeats disagree",
                )
                out.append(
                    f"CPU placement over {S.label(t)} ({S.fmt_size(size)}, {server}): {judged}."
                )
    return out


def sustained_rate(exp: dict, transport: str) -> float | None:
    """Open loop: the highest offered rate the transport kept up with -- every repeat delivered
    at least SATURATION_SHARE of it and the median p99 stayed within KNEE_FACTOR times the p99
    of the lightest step (queueing had not taken over)."""
    runs = S.select(S.ok_runs(exp), transport=transport)
    rates = sorted({r["variant"]["rate"] for r in runs})
    if not rates:
        return None
    light = S.spread(S.select(runs, rate=rates[0]), "p99_us")
    good = []
    for rate in rates:
        group = S.select(runs, rate=rate)
        p99 = S.spread(group, "p99_us")
        if any(S.saturated(r) for r in group) or p99 is None or light is None:
            continue
        if p99.median <= S.KNEE_FACTOR * light.median:
            good.append(rate)
    return max(good) if good else None


def _open_findings(exp: dict) -> list[str]:
    parts = []
    for t in S.values_of(exp, "transport"):
        rate = sustained_rate(exp, t)
        if rate is None:
            parts.append(f"{S.label(t)} did not keep up even at the lightest step")
            continue
        p99 = S.spread(S.select(S.ok_runs(exp), transport=t, rate=rate), "p99_us")
        parts.append(
            f"{S.label(t)} kept up with up to {S.fmt_num(rate)} msgs/s offered "
            f"(p99 {spread_text(p99, ' µs')} there)"
        )
    if not parts:
        return []
    where = ", ".join(x for x in (_fixed(exp, "sizes"), _fixed(exp, "conns")) if x)
    return [
        f"Open loop (fixed send schedule, {where}): " + "; ".join(parts) + ". *Kept up*: "
        f"every repeat delivered ≥ {S.SATURATION_SHARE:.0%} of the offered rate and p99 stayed "
        f"within {S.KNEE_FACTOR:g}× the p99 at the lightest load; beyond that, queues grow."
    ]


def headlines(doc: dict) -> list[str]:
    """The findings, in the order a reader asks the questions."""
    out: list[str] = []
    for kind, sweep, func in (
        ("closed", "size", _closed_size_findings),
        ("rtt", "size", _rtt_findings),
        ("closed", "conns", _conns_findings),
        ("open", "rate", _open_findings),
        ("closed", "server", _server_findings),
        ("rtt", "placement", _placement_findings),
        ("closed", "placement", _placement_findings),
    ):
        exp = S.find(doc, kind, sweep)
        if exp is not None:
            out.extend(func(exp))
        if sweep == "size" and kind == "closed":
            out.extend(engines.findings(doc))
    exp = S.find_transports(doc)
    if exp is not None:
        out.extend(transports.headlines(exp))
    return out


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


def ratio_table(exp: dict) -> list[str]:
    """UNIX vs TCP for every point of the sweep, paired by repeat (rtt: TCP ÷ UNIX time)."""
    if not {"unix", "tcp"} <= set(S.values_of(exp, "transport")):
        return []
    rtt = exp["kind"] == "rtt"
    if rtt:
        ratios = "TCP ÷ UNIX round-trip p50 | TCP ÷ UNIX p99"
        num, den = "tcp", "unix"
    else:
        ratios = "UNIX ÷ TCP msgs/s | UNIX ÷ TCP p99 latency"
        num, den = "unix", "tcp"
    rows = _table(f"server | size | conns | placement | {ratios}")
    points = {
        (v["server"], v["size"], v["conns"], v["placement"], v["rate"])
        for v in (r["variant"] for r in S.ok_runs(exp))
    }
    servers, places = S.values_of(exp, "server"), S.values_of(exp, "placement")
    for server, size, conns, place, rate in sorted(
        points, key=lambda p: (servers.index(p[0]), p[1], p[2], places.index(p[3]), p[4] or 0)
    ):
        where = {"server": server, "size": size, "conns": conns, "placement": place, "rate": rate}
        first = "p50_us" if rtt else "msgs_per_s"
        a = S.paired_ratios(exp, first, num, den, **where)
        b = S.paired_ratios(exp, "p99_us", num, den, **where)
        if a is None:
            continue
        rows.append(
            _row(server, S.fmt_size(size), conns, place, ratio_text(a), ratio_text(b) if b else "–")
        )
    return rows if len(rows) > 2 else []


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
        f"- **Interleaving and repeats**: each experiment's variants run in turn (A B C, A B C, "
        f"…; the order rotates each round) for {st['repeats']} repeats. Figures are the median "
        f"over repeats with the min–max in brackets. UNIX ÷ TCP ratios pair the two runs of the "
        f"same repeat, which ran back to back.",
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
    worst = None
    for exp in doc["experiments"]:
        if exp["kind"] != "closed":
            continue
        for key in {tuple(sorted(r["variant"].items())) for r in S.ok_runs(exp)}:
            runs = S.select(S.ok_runs(exp), **dict(key))
            s = S.spread(runs, "msgs_per_s")
            if s and s.n > 1 and (worst is None or s.rel_range > worst[0]):
                worst = (s.rel_range, dict(key), s)
    if worst:
        rel, v, s = worst
        out.append(
            f"Noise: the widest spread between repeats of one closed-loop variant was "
            f"{rel:.0%} of its median ({v['server']}, {S.label(v['transport'])}, "
            f"{S.fmt_size(v['size'])}, {v['conns']} connections: "
            f"{spread_text(s, ' msgs/s')}). Differences smaller than the spreads shown "
            f"are not findings."
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
    """The whole REPORT.md as text; ``extra`` is a finished section (static files) to add."""
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
        "## Headline findings",
        "",
    ]
    found = headlines(doc)
    lines += [f"- {h}" for h in found] or ["- No experiment produced usable runs."]
    lines += ["", "Ratios: median over paired repeats, min–max in brackets.", ""]
    for exp in doc["experiments"]:
        lines += _experiment_section(exp, [c for c in charts if c.experiment == exp["name"]])
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


def _experiment_section(exp: dict, charts: list[Chart]) -> list[str]:
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
    ratios = ratio_table(exp) if exp["kind"] != "open" else []
    if ratios:
        out += ratios + [""]
    return out


def write_report(
    doc: dict, charts: list[Chart], out: Path, results_name: str, results_dir: Path | None = None
) -> Path:
    """Write ``out/REPORT.md``; return its path. With ``http.json`` (``make bench-http``) or
    ``apps.json`` (``make bench-apps``) in ``results_dir``, their charts and sections are added."""
    from fastsock.report import apps, http

    extra: list[str] = []
    http_doc = http.load_beside((results_dir or out) / results_name)
    if http_doc is not None:
        extra += http.section(http_doc, out)
    apps_doc = apps.load_beside((results_dir or out) / results_name)
    if apps_doc is not None:
        extra += apps.section(apps_doc, doc, out)
    path = out / "REPORT.md"
    path.write_text(render(doc, charts, results_name, extra or None), encoding="utf-8")
    return path
