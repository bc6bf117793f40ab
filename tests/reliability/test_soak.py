"""Issue 15, item 1: the integrity soak. Echo and source servers, UNIX and TCP, 32 echo
connections with random message sizes (1 B..4 MiB) and pipelining depths (1..16) plus 8 source
connections; every byte verified, the servers' RSS and open descriptors sampled every second.

CI runs it for ``FASTSOCK_SOAK_S`` seconds per transport (default 5); ``make soak`` for minutes.
"""

from __future__ import annotations

import os

import pytest

from tests.conftest import parse_stats
from tests.reliability.soak import run_soak

SOAK_S = float(os.environ.get("FASTSOCK_SOAK_S", "5"))
# A server holds at most --high-water (1 MiB) queued per connection plus its 256 KiB read
# buffer: RSS may rise by that much at the start, never without bound.
RSS_SLACK = 48 << 20


@pytest.mark.timeout(SOAK_S * 3 + 90)
@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_integrity_soak(serve, tmp_path, transport):
    if transport == "unix":
        echo = serve("--unix", str(tmp_path / "echo.sock"))
        source = serve("--unix", str(tmp_path / "source.sock"), "--mode", "source")
    else:
        echo = serve("--port", "0")
        source = serve("--port", "0", "--mode", "source")
    result = run_soak(echo.endpoint, source.endpoint, SOAK_S, pids=(echo.pid, source.pid))
    assert echo.stop() == 0 and source.stop() == 0
    echo_stats, source_stats = parse_stats(echo.stderr_text), parse_stats(source.stderr_text)

    verified = result.echo_bytes + result.source_bytes
    print(
        f"\n{transport}: {SOAK_S:g} s, {result.messages} echo messages, "
        f"{result.echo_bytes / 1e9:.2f} GB echoed + {result.source_bytes / 1e9:.2f} GB from "
        f"source = {verified / 1e9:.2f} GB verified; corrupt={result.corrupt} "
        f"lost={result.lost} early_eof={result.early_eof}"
    )
    for name, pid in (("echo", echo.pid), ("source", source.pid)):
        samples = result.samples[pid]
        first, last = samples[0], samples[-1]
        peak = max(s.rss for s in samples)
        # While connected: the first sample after 1 s and the one when the run ended.
        early, late = samples[1], samples[result.stop_index]
        print(
            f"  {name} server: {len(samples)} samples; RSS before {first.rss >> 20} MiB, "
            f"connected at 1 s {early.rss >> 20} MiB, at the end {late.rss >> 20} MiB, after "
            f"{last.rss >> 20} MiB, peak {peak >> 20} MiB; fds before {first.fds}, connected "
            f"{early.fds} -> {late.fds}, after {last.fds}"
        )
        assert late.fds == early.fds
        # Sampled before the first connection and after the last close.
        assert last.fds == first.fds, f"{name}: descriptors leaked"
        assert peak <= first.rss + RSS_SLACK, f"{name}: RSS grew by {(peak - first.rss) >> 20} MiB"
    assert result.corrupt == 0 and result.lost == 0 and result.early_eof == 0
    assert result.echo_bytes > 0 and result.source_bytes > 0
    assert echo_stats["bytes_in"] == echo_stats["bytes_out"] == result.echo_bytes
    for stats in (echo_stats, source_stats):
        assert stats["resets"] == 0 and stats["errors"] == 0
        assert stats["accepted"] == stats["closed"]
