"""REPORT.md's engine section: does io_uring change the UNIX-vs-TCP answer?

fastsock serves the same handlers over two event loops. The epoll engine pays a poll and two
syscalls per message, and TCP's poll path (``tcp_poll``, ``sock_poll``) is part of what makes TCP
loopback slower; the io_uring engine takes no per-message poll or syscall. If that path is a
large share of TCP's extra cost, UNIX ÷ TCP shrinks under io_uring. The answer is a finding of
its own (fastsock.report.verdicts): per round, io_uring's UNIX ÷ TCP over epoll's, with a 95%
CI and a verdict; the table beside it gives each engine's ratio with its CI. Nothing is typed in.
"""

from __future__ import annotations

from fastsock import findings as F
from fastsock.report import summary as S
from fastsock.report import verdicts as V
from fastsock.report.plots import ENGINES_SECTION, Chart
from fastsock.report.summary import ratio_text

EPOLL, URING = "fastsock", "fastsock-uring"
TITLE = "Does io_uring change the UNIX-vs-TCP answer?"


def _size_exp(doc: dict) -> dict | None:
    """The experiment that measured both engines over both transports: the closed-loop size
    sweep where it has them (make bench-full), else the servers experiment (make bench);
    the size sweep (or None) when neither does."""
    fallback = None
    for exp in doc["experiments"]:
        if exp["kind"] != "closed" or exp["sweep"] not in ("size", "server"):
            continue
        if exp["sweep"] == "size" and fallback is None:
            fallback = exp
        asked = set(exp["params"].get("servers", []))
        if {EPOLL, URING} <= asked or any(sk["what"] == f"server {URING}" for sk in exp["skipped"]):
            return exp
    return fallback


def uring_skip_reason(doc: dict) -> str | None:
    """Why the io_uring engine did not run (None when it ran or was never asked for)."""
    exp = _size_exp(doc)
    if exp is None:
        return None
    for sk in exp["skipped"]:
        if sk["what"] == f"server {URING}":
            return sk["reason"]
    return None


def engine_ratios(exp: dict) -> dict[int, dict[str, S.Spread | None]]:
    """size -> UNIX ÷ TCP of each engine and io_uring ÷ epoll per transport (paired by round,
    estimate and 95% CI)."""
    out = {}
    for size in S.values_of(exp, "size"):
        row: dict[str, S.Spread | None] = {
            server: S.paired_ratios(exp, "msgs_per_s", server=server, size=size, depth=1)
            for server in (EPOLL, URING)
        }
        for t in ("unix", "tcp"):
            row[f"uring/epoll {t}"] = S.paired_ratios(
                exp, "msgs_per_s", URING, EPOLL, "server", size=size, transport=t, depth=1
            )
        out[size] = row
    return out


def engine_findings(doc: dict) -> dict[int, dict]:
    """size -> the finding "does io_uring change UNIX ÷ TCP" of the section's experiment."""
    exp = _size_exp(doc)
    if exp is None:
        return {}
    out = {}
    for f in V.findings_of(doc):
        d = f.get("detail") or {}
        mine = d.get("compared") == "engine" and d.get("experiment") == exp["name"]
        if mine and d["point"].get("depth", 1) == 1:
            out[d["point"]["size"]] = f
    return out


def _change(f: dict) -> str:
    return {
        "greater": "UNIX ÷ TCP was **larger** under io_uring",
        "less": "UNIX ÷ TCP was **smaller** under io_uring",
        "equivalent": "UNIX ÷ TCP was the same under both engines (within ±5%)",
    }.get(f["verdict"], "no change shown: " + F.answer(f).split("; ", 1)[-1])


def findings(doc: dict) -> list[str]:
    """One sentence: what the engine findings say, over the sizes measured."""
    exp = _size_exp(doc)
    if exp is None:
        return []
    reason = uring_skip_reason(doc)
    if reason is not None:
        return [f"The io_uring engine was not measured here ({reason}), so this run does not "
                "say whether io_uring changes the UNIX-vs-TCP answer."]  # fmt: skip
    found = engine_findings(doc)
    if not found:
        return []
    moved = [S.fmt_size(z) for z, f in found.items() if f["verdict"] in ("greater", "less")]
    if moved:
        where = f"changed it at {len(moved)} ({', '.join(moved)})"
    else:
        where = "changed it at none (no change this run can show)"
    return [
        f"Of the {len(found)} sizes measured with both of fastsock's engines, io_uring {where}."
    ]


def _cell(s: S.Spread | None) -> str:
    return ratio_text(s) if s is not None else "–"


def section(doc: dict, charts: list[Chart]) -> list[str]:
    """The section's Markdown lines; [] when the results hold no size sweep."""
    exp = _size_exp(doc)
    if exp is None:
        return []
    out = [
        f"## {TITLE}",
        "",
        "*fastsock's epoll engine pays a readiness poll and a recv and a send syscall per "
        "message, and part of TCP's extra cost is its poll path (`tcp_poll`, `sock_poll`); "
        "the io_uring engine submits a linked send→receive per echo and takes no per-message "
        "poll or syscall. Does the UNIX advantage change when the server uses io_uring?*",
        "",
    ]
    reason = uring_skip_reason(doc)
    if reason is not None:
        return out + [
            f"**Not answered by this run:** the io_uring engine was skipped on this machine "
            f"({reason}). The size sweep measured the epoll engine only.",
            "",
        ]
    for c in charts:
        if c.experiment == ENGINES_SECTION:
            out += [f"![{c.title}]({c.file})", "", c.shows, ""]
    ratios = engine_ratios(exp)
    found = engine_findings(doc)
    rows = [
        "| size | UNIX ÷ TCP, epoll engine | UNIX ÷ TCP, io_uring engine | io_uring's ÷ epoll's "
        "UNIX ÷ TCP | io_uring ÷ epoll over UNIX | io_uring ÷ epoll over TCP |",
        "|---|---|---|---|---|---|",
    ]
    sentences = []
    for size, r in ratios.items():
        f = found.get(size)
        rows.append(
            f"| {S.fmt_size(size)} | {_cell(r[EPOLL])} | {_cell(r[URING])} | "
            f"{F.ratio_text(f) + ' ' + f['verdict'] if f else '–'} | "
            f"{_cell(r['uring/epoll unix'])} | {_cell(r['uring/epoll tcp'])} |"
        )
        if f is None or r[EPOLL] is None or r[URING] is None:
            continue
        sentences.append(
            f"- {S.fmt_size(size)}: UNIX ÷ TCP {ratio_text(r[EPOLL])} with epoll, "
            f"{ratio_text(r[URING])} with io_uring: {_change(f)}."
        )
    if not sentences:
        return out + ["Neither engine has paired UNIX and TCP runs in this sweep.", ""]
    conns = exp["params"].get("conns", ["?"])
    out += (
        rows
        + [""]
        + sentences
        + [
            "",
            f"Closed loop (`{exp['name']}` experiment), {conns[0]} connections, one message in "
            "flight each. Every ratio pairs runs of the same round and is given with its 95% "
            "confidence interval; whether io_uring changes the answer is the ratio of the two "
            "engines' UNIX ÷ TCP, paired by round, and counts only where its interval "
            "excludes 1.",
            "",
        ]
    )
    return out
