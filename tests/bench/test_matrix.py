"""The matrix file: both profiles load, mistakes are one-line errors, trials are paired in
blocks and run in a random balanced order."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.matrix.plan import MATRIX_FILE, MatrixError, Variant, blocks, load_matrix, schedule
from bench.matrix.run import plan
from bench.peers.registry import PEERS

SERVERS = set(PEERS)


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_real_matrix_loads(profile: str) -> None:
    m = load_matrix(MATRIX_FILE, profile, SERVERS)
    # Enough paired trials for a useful 95% CI (issue 22), on several server instances.
    assert m.settings["repeats"] >= 8
    assert 0 < m.settings["restart_every"] < m.settings["repeats"]
    kinds = {(e.kind, e.sweep) for e in m.experiments}
    # make bench answers the headline questions; make bench-full has every experiment.
    assert {("closed", "size"), ("closed", "server"), ("closed", "placement")} <= kinds
    if profile == "full":
        assert {("rtt", "size"), ("closed", "conns"), ("open", "rate"),
                ("rtt", "placement")} <= kinds  # fmt: skip
    for e in m.experiments:
        assert {"unix", "tcp"} <= set(e.params["transports"])
    servers = next(e for e in m.experiments if e.sweep == "server")
    assert {"fastsock", "fastsock-twin"} <= set(servers.params["servers"])  # the A/A check


def test_quick_matrix_fits_its_budget() -> None:
    """`make bench` must stay near 3 minutes; this guards the matrix against growing (it checks
    the runner's own per-run estimates, not a measured time)."""
    # Issue 22: the quick matrix <= 150 s per run; make bench <= 3 minutes with the install.
    m = load_matrix(MATRIX_FILE, "quick", SERVERS)
    assert sum(plan(e, m.settings)[1] for e in m.experiments) <= 140
    full = load_matrix(MATRIX_FILE, "full", SERVERS)
    assert sum(plan(e, full.settings)[1] for e in full.experiments) <= 40 * 60


def test_full_sizes_span_16_bytes_to_1_mib() -> None:
    m = load_matrix(MATRIX_FILE, "full", SERVERS)
    size = next(e for e in m.experiments if e.kind == "closed" and e.sweep == "size")
    assert min(size.params["sizes"]) == 16 and max(size.params["sizes"]) == 1 << 20
    assert "tcp6" in size.params["transports"]


GOOD = """
[profiles.p]
repeats = 2
duration = 0.1
warmup = 0.0
rtt_values = 5
rtt_warmups = 1
rtt_processes = 1
[placements]
unpinned = {}
[[experiments]]
name = "e"
kind = "closed"
sweep = "size"
title = "t"
question = "q"
servers = ["fastsock"]
transports = ["unix", "tcp"]
sizes = [64]
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("sizes = [64]", "sizes = [0]"), "sizes value 0 is out of range"),
        (('"unix", "tcp"', '"unix", "sctp"'), "unknown transport 'sctp'"),
        (('["fastsock"]', '["nginx"]'), "unknown server 'nginx'"),
        (('kind = "closed"', 'kind = "warp"'), "kind must be one of"),
        (('question = "q"', 'question = "q"\nflavour = 1'), "unknown key(s) flavour"),
        (("sizes = [64]", 'sizes = [64]\nplacements = ["moon"]'), "placement 'moon'"),
        (("sizes = [64]", "sizes = [64]\nrate_fractions = [0.5]"), "are for kind = open"),
        (("sizes = [64]", 'sizes = [64]\nclient = "wrk"'), "client must be one of"),
        (
            ('kind = "closed"\nsweep = "size"', 'kind = "rtt"\nsweep = "size"\nclient = "c"'),
            "is for kind = closed",
        ),
        (("repeats = 2", "repeats = 0"), "must be > 0"),
        (("duration = 0.1", 'duration = "x"'), "duration must be a number"),
        (("[profiles.p]", "[profiles.other]"), "no profile 'p'"),
        (("[[experiments]]", "[[experiments]\n"), "not valid TOML"),
    ],
)
def test_matrix_errors_are_one_line(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = tmp_path / "m.toml"
    path.write_text(GOOD.replace(*change))
    with pytest.raises(MatrixError) as err:
        load_matrix(path, "p", SERVERS)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_profile_overrides(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text(GOOD + "[experiments.p]\nsizes = [16, 32]\n")
    (exp,) = load_matrix(path, "p", SERVERS).experiments
    assert exp.params["sizes"] == [16, 32]
    assert [v.transport for v in exp.variants()] == ["unix", "tcp", "unix", "tcp"]


def test_blocks_pair_what_the_findings_compare() -> None:
    size = [Variant("fastsock", t, z) for z in (64, 4096) for t in ("unix", "tcp")]
    assert [[v.transport for v in b] for b in blocks(size, "size")] == [["unix", "tcp"]] * 2
    servers = [
        Variant(s, t, 64, 32) for s in ("fastsock", "uvloop-protocol") for t in ("unix", "tcp")
    ]
    (block,) = blocks(servers, "server")  # the servers are compared with each other too
    assert len(block) == 4


def test_schedule_is_random_balanced_and_replayable() -> None:
    variants = [Variant("fastsock", t, size) for size in (64, 4096, 65536) for t in ("unix", "tcp")]
    rounds = schedule(variants, "size", 8, seed=5, salt="size")
    for r in rounds:
        flat = [v for b in r for v in b]
        assert sorted(flat, key=str) == sorted(variants, key=str)  # every variant, once
        for b in r:  # UNIX and TCP of one size back to back
            assert len({v.size for v in b}) == 1 and {v.transport for v in b} == {"unix", "tcp"}
    for size in (64, 4096, 65536):
        firsts = [next(b for b in r if b[0].size == size)[0].transport for r in rounds]
        assert firsts.count("unix") == 4  # each goes first in half the rounds
    assert rounds == schedule(variants, "size", 8, seed=5, salt="size")
    assert rounds != schedule(variants, "size", 8, seed=5, salt="other")


def test_an_experiment_can_belong_to_one_profile(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    two = GOOD.replace(
        "[placements]",
        "[profiles.q]\nrepeats = 2\nduration = 0.1\nwarmup = 0.0\n"
        "rtt_values = 5\nrtt_warmups = 1\nrtt_processes = 1\n[placements]",
    )
    path.write_text(two.replace('question = "q"', 'question = "q"\nprofiles = ["q"]'))
    assert load_matrix(path, "p", SERVERS).experiments == []
    assert len(load_matrix(path, "q", SERVERS).experiments) == 1
    path.write_text(two.replace('question = "q"', 'question = "q"\nprofiles = ["z"]'))
    with pytest.raises(MatrixError, match="unknown profile 'z'"):
        load_matrix(path, "p", SERVERS)


ALL_TRANSPORTS = ["pipe", "socketpair", "unix", "unix-seqpacket", "unix-dgram", "tcp", "udp"]


def test_transports_experiment_plan() -> None:
    """The issue's plan: 7 transports, 1 connection, ping-pong and 8 in flight at 64 B to
    60 KiB; make bench-full's (make bench spends its budget on the headline questions)."""
    full = next(e for e in load_matrix(MATRIX_FILE, "full", SERVERS).experiments
                if e.name == "transports")  # fmt: skip
    assert full.params["transports"] == ALL_TRANSPORTS
    assert full.params["sizes"] == [64, 1024, 16384, 61440]
    assert full.params["depth"] == [1, 8] and full.params["conns"] == [1]
    assert len(full.variants()) == 7 * 4 * 2
    quick = load_matrix(MATRIX_FILE, "quick", SERVERS).experiments
    assert "transports" not in {e.name for e in quick}
    # Transport innermost: the seven of one point run back to back in every round.
    for r in schedule(full.variants(), full.sweep, 3, seed=1):
        for b in r:
            assert sorted(v.transport for v in b) == sorted(ALL_TRANSPORTS)


def test_transports_dry_run_prints_the_plan() -> None:
    from tests.bench.conftest import REPO

    proc = subprocess.run(
        [sys.executable, "-m", "bench.matrix", "--dry-run", "--profile", "full", "--only",
         "transports", "--repeats", "3"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("transports"))
    assert "168 measurements" in line  # 7 transports x 4 sizes x 2 depths x 3 repeats
    assert ", ".join(ALL_TRANSPORTS) in line


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('"unix", "tcp"', '"unix", "udp"'), None),
        (('["fastsock"]', '["c-epoll"]', '"unix", "tcp"', '"unix-dgram"'), "cannot serve"),
        (('kind = "closed"', 'kind = "rtt"', '"unix", "tcp"', '"pipe"'), "closed loop"),
        (('"unix", "tcp"', '"pipe"', "sizes = [64]", 'sizes = [64]\nclient = "c"'), "client"),
    ],
)
def test_other_transports_only_where_they_can_run(
    tmp_path: Path, change: tuple[str, ...], message: str | None
) -> None:
    text = GOOD
    for old, new in zip(change[::2], change[1::2], strict=True):
        text = text.replace(old, new)
    path = tmp_path / "m.toml"
    path.write_text(text)
    if message is None:
        load_matrix(path, "p", SERVERS)
        return
    with pytest.raises(MatrixError, match=message):
        load_matrix(path, "p", SERVERS)


def test_load_argv_names_the_socket_type_and_the_floor_its_kind(tmp_path: Path) -> None:
    from bench.matrix.loadrun import floor_argv, load_argv
    from fastsock.address import unix_endpoint

    settings = {"duration": 0.3, "warmup": 0.1}
    ep = unix_endpoint("/tmp/x.sock")
    dgram = load_argv(ep, Variant("fastsock", "unix-dgram", 64), settings, tmp_path / "j", 1)
    assert dgram[dgram.index("--type") + 1] == "dgram"
    stream = load_argv(ep, Variant("fastsock", "unix", 64), settings, tmp_path / "j", 1)
    assert "--type" not in stream
    floor = floor_argv(Variant("fastsock", "pipe", 64, depth=8), settings, tmp_path / "j")
    assert floor[1:3] == ["-m", "fastsock.floor"]
    assert floor[floor.index("--kind") + 1] == "pipe"
    assert floor[floor.index("--depth") + 1] == "8"
