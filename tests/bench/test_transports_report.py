"""The transports section of REPORT.md and its chart, from the FIXTURE results (invented
numbers): every figure in the text follows the data, missing data is said, redraws are
byte-identical, and the UNIX-vs-TCP charts leave this experiment alone."""

from __future__ import annotations

from pathlib import Path

from fastsock.report import summary as S
from fastsock.report import transports as T
from fastsock.report.plots import draw_all
from fastsock.report.report import headlines, render


def _exp(doc: dict) -> dict:
    return next(e for e in doc["experiments"] if e["name"] == "transports")


def _drop(doc: dict, transport: str) -> None:
    exp = _exp(doc)
    exp["runs"] = [r for r in exp["runs"] if r["variant"]["transport"] != transport]
    exp["params"]["transports"].remove(transport)


def test_findings_are_computed_from_the_runs(fixture_doc: dict) -> None:
    exp = _exp(fixture_doc)
    text = "\n".join(T.findings(exp))
    # The ranking lists each transport's median p50 at the smallest size, depth 1.
    for t in exp["params"]["transports"]:
        p50 = S.spread(T._runs(exp, t, 64, 1), "p50_us").median
        assert f"{S.label(t)} {p50:.1f} µs" in text
    # The floor ratio is the paired ratio of the runs.
    r = S.paired_ratios(exp, "p50_us", "socketpair", "pipe", size=64, depth=1)
    assert f"socketpair ÷ pipe round trip: {S.ratio_text(r)} at 64 B" in text
    # Message sockets ran on the Python engine, streams on the native one: said.
    assert "measured by different load engines" in text
    # UDP: the fixture loses 2% at 60 KiB with 8 in flight and nowhere else.
    lost, sent = T.loss(T._runs(exp, "udp", 61440, 8))
    assert f"UDP started to lose datagrams at 60 KiB with 8 in flight: {lost:,} of {sent:,}" in text
    # TCP's extra CPU per message, split into kernel and user time, from the CPU fields.
    tcp, unix = (
        T.cpu_us_per_msg(T._runs(exp, "tcp", 64, 1)),
        T.cpu_us_per_msg(T._runs(exp, "unix", 64, 1)),
    )
    extra = sum(tcp.values()) - sum(unix.values())
    kernel = tcp["client_sys_s"] + tcp["server_sys_s"] - unix["client_sys_s"] - unix["server_sys_s"]
    assert f"TCP spent {extra:.1f} µs more: {kernel:+.1f} µs of system time" in text


def test_findings_follow_the_data(fixture_doc: dict) -> None:
    exp = _exp(fixture_doc)
    for run in exp["runs"]:
        dg = run["load"].get("datagrams")
        if dg:
            dg["sent"] -= dg["lost"]
            dg["lost"] = 0
    text = "\n".join(T.findings(exp))
    assert "UDP lost no datagram in these runs" in text
    assert "UDP started" not in text
    assert "UDP did not lose a message here" in "\n".join(headlines(fixture_doc))


def test_missing_transports_are_said_not_invented(fixture_doc: dict) -> None:
    _drop(fixture_doc, "pipe")
    _drop(fixture_doc, "udp")
    text = "\n".join(T.findings(_exp(fixture_doc)))
    assert "No pipe runs: the floor was not measured" in text
    assert "UDP was not measured." in text
    assert "pipe pair" not in text


def test_quick_profile_shape_one_size_one_depth(fixture_doc: dict, tmp_path: Path) -> None:
    """make bench measures one size at depth 1: chart and text still work (no deep panel
    ratio is claimed)."""
    exp = _exp(fixture_doc)
    exp["runs"] = [r for r in exp["runs"] if r["variant"]["depth"] == 1]
    exp["runs"] = [r for r in exp["runs"] if r["variant"]["size"] == 64]
    exp["params"].update(sizes=[64], depth=[1])
    text = "\n".join(T.findings(exp))
    assert "in flight 0." not in text and "msgs/s at" not in text
    assert T.chart(fixture_doc, tmp_path) is not None


def test_chart_and_section_redraw_identically(fixture_doc: dict, tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        out.mkdir()
        charts = draw_all(fixture_doc, out)
        (out / "REPORT.md").write_text(render(fixture_doc, charts))
    assert (first / T.CHART).read_bytes() == (second / T.CHART).read_bytes()
    report = (first / "REPORT.md").read_text()
    assert report == (second / "REPORT.md").read_text()
    assert f"![Transports: echo over one connection, from a pipe to UDP]({T.CHART})" in report
    assert "| UDP 127.0.0.1 | 60 KiB | 8 |" in report


def test_stream_charts_ignore_the_transports_experiment(fixture_doc: dict) -> None:
    """The UNIX-vs-TCP size sweep is still the `size` experiment, even if it failed."""
    assert S.find(fixture_doc, "closed", "size")["name"] == "size"
    size = next(e for e in fixture_doc["experiments"] if e["name"] == "size")
    size["runs"] = []
    assert S.find(fixture_doc, "closed", "size") is None
    assert S.find_transports(fixture_doc)["name"] == "transports"


def test_a_slower_pipe_is_explained_by_what_each_channel_held(fixture_doc: dict) -> None:
    text = "\n".join(T.findings(_exp(fixture_doc)))
    said = "The pipe had fewer messages/s than the socketpair (95% CI below 1) at 60 KiB × 8"
    assert said in text
    assert "a pipe held 65,536 B one way here (F_GETPIPE_SZ)" in text
    for run in _exp(fixture_doc)["runs"]:  # without the pipe's slow runs: no such sentence
        if run["variant"]["transport"] == "pipe":
            run["load"]["msgs_per_s"] *= 10
    assert "fewer messages/s than the socketpair" not in "\n".join(T.findings(_exp(fixture_doc)))
