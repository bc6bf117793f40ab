"""Handlers are sans-IO: fed bytes, they answer through a transport we record here."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fastsock.handlers import MODES, DiscardHandler, EchoHandler, SourceHandler
from fastsock.handlers.source import PATTERN, expected_stream


class RecordingTransport:
    def __init__(self) -> None:
        self.sent = bytearray()
        self.files: list[tuple[int, int, int]] = []
        self.closed = False
        self.aborted = False

    def write(self, data) -> None:
        self.sent += bytes(data)

    def sendfile(self, fd: int, offset: int, count: int) -> None:
        self.files.append((fd, offset, count))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


def connected(handler_cls):
    handler = handler_cls()
    transport = RecordingTransport()
    handler.connection_made(transport)
    return handler, transport


@given(st.lists(st.binary(max_size=300), max_size=20))
def test_echo_returns_every_chunk_in_order(chunks):
    handler, transport = connected(EchoHandler)
    buf = bytearray(400)
    for chunk in chunks:
        # Feed views of one reused buffer, as the connection does.
        buf[: len(chunk)] = chunk
        handler.data_received(memoryview(buf)[: len(chunk)])
    assert bytes(transport.sent) == b"".join(chunks)


def test_discard_sends_nothing_and_closes_on_eof():
    handler, transport = connected(DiscardHandler)
    handler.data_received(memoryview(b"x" * 1000))
    assert transport.sent == b""
    handler.eof_received()
    assert transport.closed


def test_echo_closes_after_peer_half_close():
    handler, transport = connected(EchoHandler)
    handler.eof_received()
    assert transport.closed and not transport.aborted


def test_source_wants_write_and_writes_the_pattern():
    handler, transport = connected(SourceHandler)
    assert SourceHandler.wants_write and not EchoHandler.wants_write
    handler.writable()
    handler.writable()
    assert bytes(transport.sent) == expected_stream(0, 2 * len(PATTERN))
    assert len(PATTERN) % 256 == 0


@given(st.integers(0, 10_000), st.integers(0, 2_000))
def test_expected_stream_is_offset_mod_256(offset, length):
    assert list(expected_stream(offset, length)) == [(offset + i) % 256 for i in range(length)]


def test_every_mode_is_a_handler():
    assert set(MODES) >= {"echo", "discard", "source"}
