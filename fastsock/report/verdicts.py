"""The findings of a matrix run: every comparison its paired trials can answer.

Each experiment's runs are grouped by round (``repeat``); within a round the variants of one
block ran back to back (bench/matrix/plan.py), so two variants of a block in the same round
are one paired trial. The comparisons, by experiment:

- every experiment: UNIX vs TCP at each point (messages/s; for one connection with one message
  in flight, the mean round trip; for the open loop, p99 at the same offered rate; for
  ping-pong (rtt), the p50 round trip);
- sweep = server: fastsock's engines vs uvloop and vs the C server, io_uring vs epoll, the A/A
  pair (fastsock vs its twin), and whether io_uring changes the UNIX ÷ TCP ratio;
- sweep = placement: cross-core vs same-core;
- the transports experiment: a socketpair vs a pipe pair.

The statistics are fastsock.findings'; this module only decides what to compare.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from fastsock import findings as F
from fastsock.report import summary as S

# Server comparisons of a sweep = server experiment: (A, B), where both ran. The first is the
# A/A check: two identical servers, which must not differ.
SERVER_PAIRS = (
    ("fastsock", "fastsock-twin"),
    ("fastsock", "uvloop-protocol"),
    ("fastsock-uring", "uvloop-protocol"),
    ("fastsock-uring", "fastsock"),
    ("fastsock", "c-epoll"),
)
AA_PAIR = SERVER_PAIRS[0]
PREFERRED = "fastsock"

Metric = tuple[str, str, bool, Callable[[dict], float | None]]  # key, words, higher better, get


def _msgs(run: dict) -> float | None:
    return S.metric(run, "msgs_per_s")


METRICS: dict[str, Metric] = {
    "msgs": ("msgs", "messages/s", True, _msgs),
    "rtt": ("rtt", "mean round-trip time", False, lambda r: S.metric(r, "mean_rtt_us")),
    "p50": ("p50", "p50 round-trip time", False, lambda r: S.metric(r, "p50_us")),
    "p99": ("p99", "p99 latency", False, lambda r: S.metric(r, "p99_us")),
}


def metric_for(exp: dict, variant: dict) -> Metric:
    """What a comparison at this point measures (see the module's docstring)."""
    if exp["kind"] == "rtt":
        return METRICS["p50"]
    if exp["kind"] == "open":
        return METRICS["p99"]
    if variant["conns"] == 1 and variant["depth"] == 1:
        return METRICS["rtt"]
    return METRICS["msgs"]


def _where(point: tuple) -> str:
    d = dict(point)
    parts = []
    if "server" in d:
        parts.append(S.server_label(d["server"]))
    if "transport" in d:
        parts.append(S.label(d["transport"]))
    parts.append(S.fmt_size(d["size"]))
    parts.append(f"{d['conns']} conn{'s' if d['conns'] != 1 else ''}")
    parts.append(f"{d['depth']} in flight")
    if d.get("placement") not in (None, "unpinned"):
        parts.append(d["placement"])
    if d.get("rate"):
        parts.append(f"{S.fmt_num(d['rate'])} msgs/s offered")
    return ", ".join(parts)


def _id(exp: dict, point: tuple, a: object, b: object, metric: str) -> str:
    d = dict(point)
    bits = [exp["name"]]
    for k in ("server", "transport"):
        if k in d:
            bits.append(str(d[k]))
    bits += [f"{d['size']}B", f"{d['conns']}c", f"d{d['depth']}"]
    if "placement" in d:
        bits.append(str(d["placement"]))
    if d.get("rate"):
        bits.append(f"r{d['rate']:g}")
    bits += [f"{a}-vs-{b}", metric]
    return "/".join(bits)


def _order(exp: dict) -> Callable[[tuple], tuple]:
    """Points in the order a reader scans them: server (as the experiment lists them), size,
    connections, depth, placement, rate."""
    servers = exp["params"].get("servers", [])
    places = exp["params"].get("placements", [])

    def key(point: tuple) -> tuple:
        d = dict(point)
        s, p = d.get("server"), d.get("placement")
        return (
            servers.index(s) if s in servers else -1,
            d.get("transport") or "",
            d["size"],
            d["conns"],
            d["depth"],
            places.index(p) if p in places else -1,
            d.get("rate") or 0,
        )

    return key


def _make(
    exp: dict,
    key: str,
    a: object,
    b: object,
    labels: tuple[str, str],
    headline: Callable[[dict], bool],
    **where: object,
) -> list[dict]:
    out = []
    metrics = {metric_for(exp, r["variant"])[0] for r in S.ok_runs(exp)}
    for name in sorted(metrics):
        mkey, words, higher, get = METRICS[name]

        def point_metric(r: dict, mkey: str = mkey, get: Callable = get) -> float | None:
            return get(r) if metric_for(exp, r["variant"])[0] == mkey else None

        found = S.paired_by_round(exp, key, a, b, point_metric, **where)
        for point in sorted(found, key=_order(exp)):
            av, bv, rounds = found[point]
            if not rounds or all(x is None for x in av):
                continue
            f = F.finding(
                _id(exp, point, a, b, mkey),
                f"{labels[0]} vs {labels[1]}: {words} ({_where(point)})",
                labels[0],
                labels[1],
                words,
                av,
                bv,
                higher_is_better=higher,
                experiment=exp["name"],
                point=dict(point),
                compared=key,
                rounds=rounds,
                headline=headline(dict(point)),
            )
            out.append(f)
    return out


def _transport_findings(exp: dict) -> list[dict]:
    transports = set(S.values_of(exp, "transport"))
    if not {"unix", "tcp"} <= transports:
        return []
    preferred = PREFERRED if PREFERRED in exp["params"].get("servers", []) else None

    def headline(point: dict) -> bool:
        return preferred is None or point.get("server") in (preferred, "fastsock-uring")

    out = _make(exp, "transport", "unix", "tcp", ("UNIX", "TCP 127.0.0.1"), headline)
    if S.is_transports(exp) and {"socketpair", "pipe"} <= transports:
        out += _make(exp, "transport", "socketpair", "pipe", ("socketpair", "pipe pair"), headline)
    return out


def _server_findings(exp: dict) -> list[dict]:
    servers = set(S.values_of(exp, "server"))
    out = []
    for a, b in SERVER_PAIRS:
        if {a, b} <= servers:
            labels = (S.server_label(a), S.server_label(b))
            out += _make(exp, "server", a, b, labels, lambda p: True)
    return out


def _engine_changes_ratio(exp: dict) -> list[dict]:
    """Does io_uring change the UNIX ÷ TCP answer? Per round, (io_uring's UNIX ÷ TCP) ÷
    (epoll's UNIX ÷ TCP): the ratio of two paired ratios, itself paired by round."""
    if not {"fastsock", "fastsock-uring"} <= set(S.values_of(exp, "server")):
        return []
    out = []
    per = {}
    for server in ("fastsock-uring", "fastsock"):
        per[server] = S.paired_by_round(exp, "transport", "unix", "tcp", _msgs, server=server)
    for point, (ua, ub, urounds) in per["fastsock-uring"].items():
        d = dict(point)
        twin = tuple(sorted({**d, "server": "fastsock"}.items()))
        if twin not in per["fastsock"]:
            continue
        ea, eb, erounds = per["fastsock"][twin]
        uring = dict(zip(urounds, _ratios(ua, ub), strict=True))
        epoll = dict(zip(erounds, _ratios(ea, eb), strict=True))
        rounds = sorted(set(uring) & set(epoll))
        if metric_for(exp, {"conns": d["conns"], "depth": d["depth"]})[0] != "msgs":
            continue
        rest = tuple(sorted((k, v) for k, v in d.items() if k != "server"))
        out.append(
            F.finding(
                _id(exp, rest, "uring-ratio", "epoll-ratio", "msgs"),
                "Does io_uring change the answer? UNIX ÷ TCP messages/s with fastsock's io_uring "
                f"engine vs with its epoll engine ({_where(rest)})",
                "fastsock (io_uring)",
                "fastsock (epoll)",
                "UNIX ÷ TCP messages/s",
                [uring[k] for k in rounds],
                [epoll[k] for k in rounds],
                experiment=exp["name"],
                point=dict(rest),
                compared="engine",
                rounds=rounds,
                headline=True,
                words={
                    "greater": "UNIX's lead over TCP is larger with io_uring",
                    "less": "UNIX's lead over TCP is smaller with io_uring",
                    "equivalent": "io_uring leaves UNIX ÷ TCP the same (within ±5%)",
                },
            )
        )
    return out


def _ratios(a: list, b: list) -> list[float | None]:
    return [x / y if x and y else None for x, y in zip(a, b, strict=True)]


def _placement_findings(exp: dict) -> list[dict]:
    if not {"same-core", "cross-core"} <= set(S.values_of(exp, "placement")):
        return []
    return _make(exp, "placement", "cross-core", "same-core", ("cross-core", "same-core"), bool)


def matrix_findings(doc: dict) -> list[dict]:
    """Every finding of a bench.json document, in the experiments' order."""
    out: list[dict] = []
    for exp in doc["experiments"]:
        if not S.ok_runs(exp):
            continue
        out += _transport_findings(exp)
        if exp["sweep"] == "server":
            out += _server_findings(exp)
        out += _engine_changes_ratio(exp)
        if exp["sweep"] == "placement":
            out += _placement_findings(exp)
    return out


def findings_of(doc: dict) -> list[dict]:
    """The findings stored in the document, or computed from its runs (an older file)."""
    stored = doc.get("findings")
    return stored if stored is not None else matrix_findings(doc)


def headline(findings: Iterable[dict]) -> list[dict]:
    return [f for f in findings if (f.get("detail") or {}).get("headline", True)]


def is_aa(f: dict) -> bool:
    d = f.get("detail") or {}
    return d.get("compared") == "server" and f["id"].split("/")[-2] == "-vs-".join(AA_PAIR)
