"""End to end: a tiny matrix through `python -m bench.matrix` (real servers, real `fastsock load`,
real pyperf), then pyperf reads the RTT files and `fastsock plot` redraws the same report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from fastsock.report import summary as S
from fastsock.report.results import check
from tests.bench.conftest import REPO, TINY_MATRIX


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    base = tmp_path_factory.mktemp("smoke")
    out = base / "results"
    env = dict(os.environ, TMPDIR=str(base))  # every socket and temp file under base
    argv = [sys.executable, "-m", "bench.matrix", "--matrix", str(TINY_MATRIX), "--profile", "tiny"]
    proc = subprocess.run(
        [*argv, "--out", str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=150
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # Every server the run started was stopped: no process still names our temp folder.
    leftovers = []
    for p in psutil.process_iter(["cmdline"]):
        if any(str(base) in arg for arg in p.info["cmdline"] or []):
            leftovers.append(p.info["cmdline"])
    assert leftovers == []
    doc = json.loads((out / "bench.json").read_text())
    return out, doc, proc.stdout


@pytest.mark.timeout(180)
def test_results_validate_and_hold_every_run(smoke) -> None:
    _, doc, _ = smoke
    assert check(doc) == []
    by_name = {e["name"]: e for e in doc["experiments"]}
    assert set(by_name) == {"rtt", "size", "openloop", "transports"}
    for exp in by_name.values():
        failed = [r["error"] for r in S.failed_runs(exp)]
        assert failed == [], failed
        assert exp["skipped"] == []
    # 2 sizes x 2 transports x 2 repeats, each run a real measurement.
    size = by_name["size"]
    assert len(size["runs"]) == 8
    for run in size["runs"]:
        assert run["load"]["msgs_per_s"] > 0
        assert run["load"]["errors"]["total"] == 0
        assert run["load"]["params"]["transport"] == run["variant"]["transport"]
        assert run["load"]["params"]["size"] == run["variant"]["size"]
    assert {r["repeat"] for r in size["runs"]} == {0, 1}
    # restart_every = 1: each round talked to a server instance of its own.
    assert {r["repeat"]: r["instance"] for r in size["runs"]} == {0: 0, 1: 1}
    assert all("disturbed" in r["interference"] for r in size["runs"])
    # Findings: UNIX vs TCP at each size, from the 2 rounds (too few for an interval).
    # A size whose runs another process disturbed counts nowhere (the tests may share the
    # machine), so its finding is there exactly when a UNIX and a TCP run of a round count.
    ids = {f["id"] for f in doc["findings"]}
    for z in (64, 65536):
        counted = S.select(S.ok_runs(size), size=z)
        paired = {r["repeat"] for r in counted if r["variant"]["transport"] == "unix"} & {
            r["repeat"] for r in counted if r["variant"]["transport"] == "tcp"
        }
        assert (f"size/fastsock/{z}B/4c/d1/unpinned/unix-vs-tcp/msgs" in ids) == bool(paired)
    assert all(f["n"] <= 2 and f["verdict"] == "unclear" for f in doc["findings"])
    rtt = by_name["rtt"]
    assert all(len(r["rtt_us"]) == 20 and min(r["rtt_us"]) > 0 for r in rtt["runs"])
    openloop = by_name["openloop"]
    rates = sorted({r["variant"]["rate"] for r in openloop["runs"]})
    capacity = max(r["load"]["msgs_per_s"] for r in openloop["calibration"])
    assert len(rates) == 1 and rates[0] == pytest.approx(0.5 * capacity, rel=0.05)
    assert all(r["variant"]["depth"] == 8 for r in openloop["calibration"])


@pytest.mark.timeout(180)
def test_transports_run_the_floor_and_every_socket_type(smoke) -> None:
    """pipe through fastsock.floor (no server), the others through fastsock serve --type and
    fastsock load --type: what each run measured is what its variant names."""
    _, doc, _ = smoke
    exp = next(e for e in doc["experiments"] if e["name"] == "transports")
    assert len(exp["runs"]) == 4 * 2
    expected = {
        "pipe": ("pipe", "stream"),
        "unix-seqpacket": ("unix", "seqpacket"),
        "unix-dgram": ("unix", "dgram"),
        "udp": ("udp", "dgram"),
    }
    for run in exp["runs"]:
        assert run["status"] == "ok", run["error"]
        params = run["load"]["params"]
        got = (params["transport"], params.get("type", "stream"))
        assert got == expected[run["variant"]["transport"]]
        assert run["load"]["messages"] > 0 and run["load"]["errors"]["total"] == 0
        assert ("datagrams" in run["load"]) == (got[1] == "dgram")
    pipe = [r for r in exp["runs"] if r["variant"]["transport"] == "pipe"]
    assert all(r["load"]["params"]["peer"].startswith("fastsock.echo_child") for r in pipe)


@pytest.mark.timeout(180)
def test_placement_pins_the_rtt_client(smoke) -> None:
    out, doc, _ = smoke
    rtt = next(e for e in doc["experiments"] if e["name"] == "rtt")
    assert rtt["params"]["placements"] == ["same-core"]
    meta = json.loads((out / rtt["pyperf_files"]["unix"]).read_text())
    # pyperf records the affinity its workers ran with.
    assert str(meta["metadata"].get("cpu_affinity", "")) == "0"


@pytest.mark.timeout(180)
def test_pyperf_reads_the_rtt_files(smoke) -> None:
    out, doc, _ = smoke
    files = next(e for e in doc["experiments"] if e["name"] == "rtt")["pyperf_files"]
    for name in files.values():
        stats = subprocess.run([sys.executable, "-m", "pyperf", "stats", str(out / name)],
                               capture_output=True, text=True, timeout=60)  # fmt: skip
        assert stats.returncode == 0, stats.stderr
        assert "fastsock-64B-same-core" in stats.stdout
        assert "Total number of values: 40" in stats.stdout  # 20 values x 2 rounds
    compare = subprocess.run(
        [sys.executable, "-m", "pyperf", "compare_to", str(out / files["tcp"]),
         str(out / files["unix"])], capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert compare.returncode == 0, compare.stderr
    assert "fastsock-262144B-same-core" in compare.stdout


@pytest.mark.timeout(180)
def test_charts_and_report_match_the_json(smoke, tmp_path: Path) -> None:
    out, doc, stdout = smoke
    for name in ("rtt-vs-size.png", "throughput-vs-size.png", "unix-tcp-ratio.png",
                 "latency-spectrum.png", "latency-vs-load.png", "transports.png",
                 "REPORT.md"):  # fmt: skip
        assert (out / name).stat().st_size > 0, name
    report = (out / "REPORT.md").read_text()
    assert "FIXTURE" not in report
    size = next(e for e in doc["experiments"] if e["name"] == "size")
    ratio = S.paired_ratios(size, "msgs_per_s", server="fastsock", size=64)
    assert f"{ratio.median:.2f}×" in report
    assert "## Transports" in report
    assert "UDP lost no datagram" in report or "UDP started to lose" in report
    # `fastsock plot` from the saved JSON alone writes the very same report.
    redo = subprocess.run(
        [sys.executable, "-m", "fastsock", "plot", str(out / "bench.json"), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert redo.returncode == 0, redo.stderr
    assert (tmp_path / "REPORT.md").read_text() == report
    assert "bench: finished" in stdout
