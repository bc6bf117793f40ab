"""REPORT.md's engine section: does io_uring change the UNIX-vs-TCP answer?

fastsock serves the same handlers over two event loops. The epoll engine pays a poll and two
syscalls per message, and TCP's poll path (``tcp_poll``, ``sock_poll``) is part of what makes TCP
loopback slower; the io_uring engine takes no per-message poll or syscall. If that path is a
large share of TCP's extra cost, UNIX ÷ TCP shrinks under io_uring. Every figure and verdict
here is computed from the size sweep of the results document (paired UNIX/TCP ratios per
repeat, min-max over repeats); nothing is typed in.
"""

from __future__ import annotations

from fastsock.report import summary as S
from fastsock.report.plots import ENGINES_SECTION, Chart
from fastsock.report.summary import ratio_text

EPOLL, URING = "fastsock", "fastsock-uring"
TITLE = "Does io_uring change the UNIX-vs-TCP answer?"


def _size_exp(doc: dict) -> dict | None:
    """The closed-loop size sweep, if it has any run (skipped variants still leave a record)."""
    for exp in doc["experiments"]:
        if exp["kind"] == "closed" and exp["sweep"] == "size":
            return exp
    return None


def uring_skip_reason(doc: dict) -> str | None:
    """Why the io_uring engine did not run in the size sweep (None when it ran or was never
    asked for)."""
    exp = _size_exp(doc)
    if exp is None:
        return None
    for sk in exp["skipped"]:
        if sk["what"] == f"server {URING}":
            return sk["reason"]
    return None


def engine_ratios(exp: dict) -> dict[int, dict[str, S.Spread | None]]:
    """size -> UNIX ÷ TCP of each engine and io_uring ÷ epoll per transport (paired by repeat)."""
    out = {}
    for size in S.values_of(exp, "size"):
        row: dict[str, S.Spread | None] = {
            server: S.paired_ratios(exp, "msgs_per_s", server=server, size=size)
            for server in (EPOLL, URING)
        }
        for t in ("unix", "tcp"):
            row[f"uring/epoll {t}"] = S.paired_ratios(
                exp, "msgs_per_s", URING, EPOLL, "server", size=size, transport=t
            )
        out[size] = row
    return out


def _change(epoll: S.Spread, uring: S.Spread) -> str:
    """smaller / larger when the two engines' min-max ranges do not overlap, else same."""
    if uring.hi < epoll.lo:
        return "smaller"
    if uring.lo > epoll.hi:
        return "larger"
    return "same"


def findings(doc: dict) -> list[str]:
    """One headline: at how many sizes io_uring moved UNIX ÷ TCP beyond the repeats' spread."""
    exp = _size_exp(doc)
    if exp is None:
        return []
    reason = uring_skip_reason(doc)
    if reason is not None:
        return [f"The io_uring engine was not measured here ({reason}), so this run does not "
                "say whether io_uring changes the UNIX-vs-TCP answer."]  # fmt: skip
    rows = {size: r for size, r in engine_ratios(exp).items() if r[EPOLL] and r[URING]}
    if not rows:
        return []
    changes = {size: _change(r[EPOLL], r[URING]) for size, r in rows.items()}
    moved = [S.fmt_size(z) for z, c in changes.items() if c != "same"]
    first = min(rows)
    e, u = rows[first][EPOLL], rows[first][URING]
    if moved:
        where = f"did not overlap at {len(moved)} ({', '.join(moved)})"
    else:
        where = "overlapped at every one (no change this run can show)"
    return [
        f"With fastsock's io_uring engine, UNIX ÷ TCP messages/s at {S.fmt_size(first)} was "
        f"{ratio_text(u)} against {ratio_text(e)} with its epoll engine; over the "
        f"{len(rows)} sizes measured, the two engines' ranges {where}."
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
    rows = [
        "| size | UNIX ÷ TCP, epoll engine | UNIX ÷ TCP, io_uring engine | "
        "io_uring ÷ epoll over UNIX | io_uring ÷ epoll over TCP |",
        "|---|---|---|---|---|",
    ]
    sentences = []
    for size, r in ratios.items():
        rows.append(
            f"| {S.fmt_size(size)} | {_cell(r[EPOLL])} | {_cell(r[URING])} | "
            f"{_cell(r['uring/epoll unix'])} | {_cell(r['uring/epoll tcp'])} |"
        )
        e, u = r[EPOLL], r[URING]
        if e is None or u is None:
            continue
        change = _change(e, u)
        if change == "same":
            verdict = (
                "the two ranges overlap, so this run shows no change beyond the spread "
                "between repeats"
            )
        else:
            verdict = (
                f"UNIX ÷ TCP was **{change}** under io_uring, with no overlap "
                f"between the engines' min-max ranges"
            )
        gain = [
            f"{label} {ratio_text(g)}"
            for label, g in (("UNIX", r["uring/epoll unix"]), ("TCP", r["uring/epoll tcp"]))
            if g is not None
        ]
        sentences.append(
            f"- {S.fmt_size(size)}: UNIX ÷ TCP {ratio_text(e)} with epoll, {ratio_text(u)} "
            f"with io_uring: {verdict}. io_uring ÷ epoll messages/s: {', '.join(gain)}."
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
            f"Closed loop, {conns[0]} connections, one message in flight each; ratios pair the "
            "UNIX and TCP runs (or the two engines' runs) of the same repeat; min–max over "
            f"{max(s.n for r in ratios.values() for s in r.values() if s)} repeats in brackets. "
            "A change counts only where the engines' ranges do not overlap.",
            "",
        ]
    )
    return out
