"""The batching study's trace reading: perf script lines in, distances out (no perf needed)."""

from __future__ import annotations

import pytest

from bench.studies.uring_batches import (
    DECODERS,
    Event,
    c_uring_op,
    fastsock_op,
    main,
    parse_trace,
    summarise,
)
from fastsock.uring.connection import OP_CHAIN_SEND, OP_SEND


def complete(ud: int, res: int) -> str:
    return (
        f"  python 17585 [000] 31442.538174:        io_uring:io_uring_complete: ring "
        f"0xffff8881ba359800, req 0xffff8881075a2e00, user_data {ud:#x}, result {res}, "
        "cflags 0x0 extra1 0 extra2 0"
    )


def submit(ud: int, opcode: str) -> str:
    return (
        f"  python 17585 [000] 31442.537165:      io_uring:io_uring_submit_req: ring "
        f"0xffff8881ba359800, req 0xffff888159611f00, user_data {ud:#x}, opcode {opcode}, "
        "flags 0x400045, sq_thread 0"
    )


ENTER = (
    "  python 17585 [000] 31442.537160: syscalls:sys_enter_io_uring_enter: fd: 0x00000005, "
    "to_submit: 0x00000002, min_complete: 0x00000001, flags: 0x00000011, argp: 0x00000000, "
    "argsz: 0x00000000"
)


def test_perf_script_lines_become_events_and_the_rest_is_skipped() -> None:
    lines = [ENTER, complete(5, 219264), submit(OP_CHAIN_SEND | 5, "SEND"), "", "garbage"]
    assert parse_trace(lines) == [
        Event("enter"),
        Event("complete", 5, 219264),
        Event("submit", OP_CHAIN_SEND | 5),
    ]
    assert parse_trace([complete(7, -104)]) == [Event("complete", 7, -104)]


def test_decoders_follow_each_servers_user_data() -> None:
    assert fastsock_op(3) == ("recv", 3)
    assert fastsock_op(OP_CHAIN_SEND | 3) == ("send", 3)
    assert fastsock_op(OP_SEND | 3)[0] is None  # a queued send is not the echo's
    assert fastsock_op(8 << 32)[0] is None  # the server's own ACCEPT
    gen_fd = (7 << 32) | 12  # generation 7, fd 12
    assert c_uring_op(gen_fd) == ("recv", gen_fd)
    assert c_uring_op((1 << 56) | gen_fd) == ("send", gen_fd)
    assert c_uring_op((2 << 56) | 0)[0] is None  # ACCEPT
    assert set(DECODERS) == {"fastsock-uring", "c-uring"}


def test_distance_counts_what_all_connections_received_until_the_echo_is_submitted() -> None:
    """Three connections read 100, 200 and 300 bytes in one batch, then their echoes go out:
    the first one's bytes waited while 600 were received in all, the last one's only its own."""
    send = OP_CHAIN_SEND
    lines = [
        ENTER,
        complete(1, 100),
        complete(2, 200),
        complete(3, 300),
        complete(4, 0),  # EOF: no bytes, no distance
        ENTER,
        submit(send | 1, "SEND"),
        submit(1, "RECV"),
        submit(send | 2, "SEND"),
        submit(send | 3, "SEND"),
        submit(send | 9, "SEND"),  # no RECV of its own in the trace: not counted
    ]
    result = summarise(parse_trace(lines), fastsock_op, messages=3)
    assert result["recvs"] == 3 and result["recvs_per_message"] == 1.0
    assert result["mean_recv_bytes"] == 200
    assert result["sends_per_enter"] == 2.0  # 4 SENDs over 2 enters
    assert result["distances"] == 3
    assert result["distance_median_bytes"] == 500  # distances 600, 500, 300
    assert result["distance_p90_bytes"] == 600


def test_an_empty_trace_gives_no_figures_rather_than_a_crash() -> None:
    result = summarise([], fastsock_op, messages=0)
    assert result["recvs_per_message"] is None and result["distance_median_bytes"] is None


def test_a_server_without_a_decoder_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--servers", "fastsock"])
    assert exit_info.value.code == 2
    assert "no decoder for fastsock" in capsys.readouterr().err
