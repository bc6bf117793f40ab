"""One accepted connection: reading, the send queue, backpressure, half-close and close.

The data path of one echoed message (see shared/design.md):

    epoll says readable -> recv_into(a view of the server's shared read buffer)
    -> handler.data_received(view[:n]) -> transport.write(view) -> sock.send(view) at once
    -> all sent: done, nothing copied, nothing registered for writing
    -> partly sent: copy the rest into the send queue, register EVENT_WRITE, and stop reading
       once the queue holds ``high_water`` bytes; resume below ``low_water``

The read buffer is shared by every connection of a server (one loop, one thread): a handler gets
a view that is valid only during its call. So memory is one buffer plus what is queued, and the
queue of each connection never exceeds its high-water mark.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from fastsock.buffer import ReadBuffer
from fastsock.handlers.base import Buffer, Handler, OnDone
from fastsock.loop import EVENT_READ, EVENT_WRITE, READABLE, WRITABLE, EventLoop, Timer
from fastsock.stats import ServerStats

log = logging.getLogger(__name__)

# How much one os.sendfile() call may move; large enough to amortise the syscall.
SENDFILE_CHUNK = 1 << 20
# The read+send fallback's buffer (one per server, shared like the read buffer).
COPY_CHUNK = 256 * 1024

_RESET_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED, errno.ETIMEDOUT}
# os.sendfile() refusing this file/socket pair (not a transient error): copy instead.
_NO_SENDFILE_ERRNOS = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV}
_MSG_MORE = getattr(socket, "MSG_MORE", 0)
_MSG_TRUNC = getattr(socket, "MSG_TRUNC", 0)
_EPOLLOUT = getattr(select, "EPOLLOUT", 4)  # the loop passes epoll-style bits (see loop.py)
# The echo fast path keeps one view of the read buffer per message length up to this size (see
# ConnectionContext.echo_views): at most 4,097 small objects per server, whatever clients send.
ECHO_VIEW_MAX = 4096


class FileBody:
    """A queued file region: where we are, how much is left, and whom to tell when done.

    ``on_done(completed)`` is called exactly once: True when every byte was sent, False when the
    connection dropped the body (closed, reset, file truncated). The owner of ``fd`` closes it
    there, so a descriptor is released on every path.
    """

    __slots__ = ("fd", "offset", "remaining", "on_done", "copy")

    def __init__(
        self,
        fd: int,
        offset: int,
        count: int,
        on_done: OnDone | None = None,
        copy: bool = False,
    ) -> None:
        self.fd = fd
        self.offset = offset
        self.remaining = count
        self.on_done = on_done
        self.copy = copy  # read+send through the server's copy buffer instead of os.sendfile


class CopyBuffer:
    """The read+send fallback's buffer (``--no-sendfile``), one per server like the read buffer,
    and which body's bytes it holds (see :meth:`Connection._copy_file`). Allocated on first
    use: most modes never send files."""

    __slots__ = ("_view", "owner", "offset", "length")

    def __init__(self) -> None:
        self._view: memoryview | None = None
        self.owner: FileBody | None = None
        self.offset = 0
        self.length = 0

    @property
    def view(self) -> memoryview:
        if self._view is None:
            self._view = memoryview(bytearray(COPY_CHUNK))
        return self._view


@dataclass(eq=False)
class ConnectionContext:
    """All a connection needs from the server that owns it, shared by all its connections: the
    loop, the read buffer, the watermarks, how file bodies go out, the stats it counts into, the
    copy buffer, and whom to tell when it has closed. The server makes one; this module never
    imports the server."""

    loop: EventLoop
    read_buffer: ReadBuffer
    high_water: int
    low_water: int
    sendfile: bool
    stats: ServerStats
    on_closed: Callable[[Connection], None]
    read_view: memoryview = field(init=False)
    # echo_views[n] is read_view[:n], made the first time an echo of n bytes arrives. Slicing
    # builds a slice object and a GC-tracked memoryview per message and frees both afterwards
    # (~510 instructions of a 64 B echo, callgrind); a list lookup allocates nothing. Safe to
    # share: a view is used only during the call that received into the buffer, and the echo
    # path never keeps one (a partial send copies the rest into the queue).
    echo_views: list[memoryview | None] = field(init=False)
    copy: CopyBuffer = field(default_factory=CopyBuffer)

    def __post_init__(self) -> None:
        self.read_view = memoryview(self.read_buffer)
        self.echo_views = [None] * (min(ECHO_VIEW_MAX, len(self.read_buffer)) + 1)


class Connection:
    """Carries one handler over one non-blocking stream socket; implements ``Transport``."""

    __slots__ = (
        "ctx",
        "loop",
        "sock",
        "fd",
        "handler",
        "peer",
        "progress_seen",
        "progress_at",
        "bytes_in",
        "bytes_out",
        "echoed",
        "_queue",
        "_queued_bytes",
        "_events",
        "_paused",
        "_held",
        "_eof",
        "_closing",
        "_closed",
        "_send",
        "_recv_into",
        "_read_buffer",
        "_read_into",
        "_read_view",
        "_echo_views",
        "_data_received",
        "_read_callback",
        "_messages",
        "_high",
        "_low",
        "_read_max",
        "_copy_bodies",
    )

    def __init__(
        self, ctx: ConnectionContext, sock: socket.socket, handler: Handler, peer: str
    ) -> None:
        self.ctx = ctx
        self.loop = ctx.loop
        self.sock = sock
        self.fd = sock.fileno()
        self.handler = handler
        self.peer = peer
        # Idle detection without a clock read per message: the server's sweep compares the byte
        # counters with what it saw last time (see Server._sweep_idle).
        self.progress_seen = 0
        self.progress_at = ctx.loop.now
        self.bytes_in = 0
        self.bytes_out = 0
        # Bytes the echo fast path received and sent back whole: in *and* out, counted once
        # (each counter is an int allocation per message: two cost ~9% of a 64 B echo). This one
        # is now the whole remaining gap to the bare loop: without it 5,427 instructions per
        # 64 B echo, with it 5,716, bare loop 5,439 (callgrind). Tried and dropped: appending n
        # to a list the server sums once per wake-up, plus an activity flag for the idle sweep
        # (no allocation per message, but 5,781: sum() pays per element what += did).
        self.echoed = 0
        self._queue: deque[memoryview | FileBody] = deque()
        self._queued_bytes = 0
        self._events = 0
        self._paused = False  # reading stopped by backpressure (queue at the high-water mark)
        self._held = False  # reading stopped by the handler (pause_reading)
        self._eof = False  # the peer shut its write side
        self._closing = False
        self._closed = False
        # Bound methods looked up once: the hot path calls them for every message.
        self._send = sock.send
        self._recv_into = sock.recv_into
        self._read_buffer = ctx.read_buffer
        self._read_view = ctx.read_view
        self._echo_views = ctx.echo_views
        self._data_received = handler.data_received
        self._read_callback = self._read_common
        # SOCK_SEQPACKET: every recv returns one whole message, or cuts it (see _message_common).
        self._messages = sock.type == socket.SOCK_SEQPACKET
        self._high = ctx.high_water
        self._low = ctx.low_water
        # One read must fit under the high-water mark too: an unsent remainder is queued.
        self._read_max = min(len(ctx.read_buffer), self._high)
        # What the common state reads into: a buffer of exactly _read_max bytes, so recv_into
        # takes one argument (parsing a second one cost ~5% of a 64 B echo's instructions).
        self._read_into = (
            self._read_buffer
            if self._read_max == len(self._read_buffer)
            else self._read_view[: self._read_max]
        )
        self._copy_bodies = not ctx.sendfile

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self.handler.connection_made(self)
        # Looked up after connection_made: a handler may bind data_received to the transport.
        self._data_received = self.handler.data_received
        if self._messages:
            self._read_callback = self._message_common
        elif self._data_received == self.write:
            self._read_callback = self._echo_common  # echo: recv and send in one step
        if not self._closed:
            self._set_events(EVENT_READ | (EVENT_WRITE if self.handler.wants_write else 0))

    @property
    def queued_bytes(self) -> int:
        """Bytes accepted from the handler and not yet sent (the backpressure measure)."""
        return self._queued_bytes

    @property
    def closed(self) -> bool:
        return self._closed

    def _set_events(self, events: int) -> None:
        if events == self._events or self._closed:
            return
        # Reading only is the common state: it gets a read callback that skips every state check
        # (see "The common state" below). Any other registration goes through _on_event.
        callback = self._read_callback if events == EVENT_READ else self._on_event
        if events == 0:
            self.loop.unregister(self.fd)
        elif self._events == 0:
            self.loop.register(self.fd, events, callback)
        else:
            self.loop.modify(self.fd, events, callback)
        self._events = events

    def _update_events(self) -> None:
        events = 0
        if not (self._paused or self._held or self._eof or self._closing):
            events |= EVENT_READ
        if self._queue or (self.handler.wants_write and not self._closing):
            events |= EVENT_WRITE
        self._set_events(events)

    # -- events -------------------------------------------------------------------------------
    def _on_event(self, mask: int) -> None:
        if mask == _EPOLLOUT:
            # Only writable: the event a large body in flight gets ~60 times per 16 MiB over a
            # UNIX socket (a sendfile moves one socket buffer): keep its path short.
            if not self._closed:
                try:
                    self._on_writable()
                except Exception:
                    self._handler_failed()
            return
        if mask & READABLE:
            self._on_readable(mask)
        if mask & WRITABLE and not self._closed:
            try:
                self._on_writable()
            except Exception:
                self._handler_failed()

    def _handler_failed(self) -> None:
        # A bug in a handler must cost one connection, never the server.
        self.ctx.stats.errors += 1
        log.exception("connection %s: unexpected error; closing it", self.peer)
        self.abort()

    def _on_readable(self, mask: int = 0) -> None:
        """Readable in any state: read no more than the send queue has room for."""
        nbytes = 0
        if self._queued_bytes:
            # Never read more than the queue has room for: this is what bounds memory.
            nbytes = min(self._read_max, self._high - self._queued_bytes)
            if nbytes <= 0 or (self._messages and nbytes < self._read_max):
                # (A message must be read whole: a shorter read would cut it.)
                self._pause_reading()
                return
        if self._messages:
            self._message_common(mask)
        else:
            self._read_common(mask, nbytes)

    # -- the common state ---------------------------------------------------------------------
    # A connection registered for EVENT_READ alone is in the common state: nothing is queued,
    # reading is neither paused (backpressure) nor held (the handler), no EOF was seen and it is
    # not closing -- _update_events adds EVENT_WRITE whenever something is queued and drops
    # EVENT_READ in each of the other cases, and a closed connection is unregistered. So the
    # read callbacks below need not check any of it: one recv of up to _read_max bytes (under
    # the high-water mark, so even an unsent echo fits the queue's bound) and, for echo, one
    # send. This is where a small message spends its Python time; every other state takes
    # _on_event and the general code above.
    #
    # The bound methods kept in slots (_recv_into, _send, _data_received) are called through a
    # local: ``self._send(view)`` compiles to LOAD_METHOD, which CPython 3.11 cannot specialise
    # for a slot holding a bound method, and its generic lookup cost ~250 instructions per
    # echoed message (callgrind); loading the slot into a local is a specialised LOAD_ATTR.
    #
    # Why the socket methods and not os.readv(fd, [buffer]) / os.write(fd, view): the os
    # functions skip the argument tuple and format string (~970 instructions fewer per 64 B
    # echo, callgrind), but read/readv/write on a socket go through the VFS layer, which costs
    # more in the kernel than recvfrom/sendto. A C loop of one 64 B exchange over a UNIX
    # socketpair: write+readv 2.65-3.07 µs, send+recv 2.35-2.66 µs; this server's CPU per
    # message, 30 interleaved rounds: 5.78 µs with the os functions, 5.43 µs without.

    def _read_common(self, mask: int = 0, nbytes: int = 0) -> None:
        """The common state, any handler: recv (``nbytes`` or ``_read_max``), hand the view to
        the handler. Also the last step of :meth:`_on_readable` in every other state."""
        recv_into = self._recv_into
        try:
            n = recv_into(self._read_buffer, nbytes) if nbytes else recv_into(self._read_into)
        except BlockingIOError:
            return
        except OSError as err:
            self._fail(err)
            return
        self._received(n)

    def _received(self, n: int) -> None:
        """Hand the ``n`` bytes just read into the buffer to the handler (0: end of stream).
        Shared by the stream and message reads; a call more per read than inlining it (~40 ns
        of ~5 µs per message), and echo's common path does not come here."""
        data_received = self._data_received  # a local, not a method load: see above
        try:
            if n:
                self.bytes_in += n
                data_received(self._read_view[:n])
            else:
                self._on_eof()
        except Exception:
            self._handler_failed()

    def _message_common(self, mask: int = 0) -> None:
        """``_read_common`` for SOCK_SEQPACKET: one recv is one message. With MSG_TRUNC the
        kernel returns a message's real length even when it cut it to fit the buffer, so a
        message longer than ``_read_max`` is an error that closes the connection, never a
        silently shortened echo."""
        recv_into = self._recv_into
        try:
            n = recv_into(self._read_into, 0, _MSG_TRUNC)
        except BlockingIOError:
            return
        except OSError as err:
            self._fail(err)
            return
        if n > self._read_max:
            self.ctx.stats.errors += 1
            log.warning(
                "connection %s: a %d-byte message is longer than --read-size/--high-water "
                "allow (%d); closing",
                self.peer,
                n,
                self._read_max,
            )
            self.abort()
            return
        self._received(n)

    def _echo_common(self, mask: int = 0) -> None:
        """The common state, echo: recv, then send the same view back (``write`` inlined: not
        closing, nothing queued, so it would send at once; only what the socket did not take
        is copied into the queue)."""
        recv_into, send = self._recv_into, self._send
        try:
            n = recv_into(self._read_into)
        except BlockingIOError:
            return
        except OSError as err:
            self._fail(err)
            return
        if not n:
            try:
                self._on_eof()
            except Exception:
                self._handler_failed()
            return
        if n <= ECHO_VIEW_MAX:
            views = self._echo_views
            view = views[n]
            if view is None:
                view = views[n] = self._read_view[:n]
        else:
            view = self._read_view[:n]
        try:
            sent = send(view)
        except BlockingIOError:
            sent = 0
        except OSError as err:
            self.bytes_in += n
            self._fail(err)
            return
        if sent == n:
            self.echoed += n
            return
        self.bytes_in += n
        self.bytes_out += sent
        self._enqueue(view, sent)
        self._update_events()

    def _on_writable(self) -> None:
        if self._queue:
            self._flush()
            if self._closed:
                return
            if self._paused and self._queued_bytes <= self._low:
                self._paused = False
            elif self._queue:
                return  # still waiting for room, reading as before: no event change
            if not self._queue and self._closing:
                self._finish()
                return
        elif self.handler.wants_write and not self._closing:
            self.handler.writable()
            if self._closed:
                return
        self._update_events()

    def _on_eof(self) -> None:
        self._eof = True
        self.handler.eof_received()
        if not self._closed:
            self._update_events()

    # -- Transport ----------------------------------------------------------------------------
    def write(self, data: Buffer, flags: int = 0) -> None:
        """Send ``data`` (``flags``: the send's, see :meth:`write_more`); what the socket does
        not take now is copied into the queue."""
        if self._closed or self._closing:
            return
        size = len(data)
        if not size:
            return
        if self._queue:
            self._enqueue(data, 0)
            return
        send = self._send  # a local, not LOAD_METHOD on a slot (see "The common state")
        try:
            sent = send(data, flags)
        except BlockingIOError:
            sent = 0
        except OSError as err:
            self._fail(err)
            return
        self.bytes_out += sent
        if sent < size:
            self._enqueue(data, sent)
            self._update_events()

    def _enqueue(self, data: Buffer, start: int) -> None:
        """Queue ``data[start:]``: copied unless it is an immutable ``bytes`` object."""
        if type(data) is bytes:
            view = memoryview(data)[start:]
        else:
            view = memoryview(bytes(memoryview(data)[start:]))
        self._queue.append(view)
        self._queued_bytes += len(view)
        stats = self.ctx.stats
        if self._queued_bytes > stats.peak_buffered:
            stats.peak_buffered = self._queued_bytes
        if self._queued_bytes >= self._high:
            self._pause_reading()

    def write_more(self, data: Buffer) -> None:
        """``write``, telling the kernel more follows at once (``MSG_MORE``).

        For a response header before its body: without it the header leaves in a packet of its
        own, which halved 64 KiB file throughput over TCP (shared/design.md). Only call it when
        a ``write`` or ``sendfile`` follows in the same step, or the kernel holds the bytes back.
        """
        self.write(data, _MSG_MORE)

    def sendfile(
        self, fd: int, offset: int, count: int, on_done: OnDone | None = None, head: Buffer = b""
    ) -> None:
        """Send ``head`` (if any), then ``count`` bytes of file ``fd`` from ``offset``.

        sendfile mode: the head goes with ``MSG_MORE`` and the body by ``os.sendfile``. Copy
        mode (``--no-sendfile``): a small body is read in after the head and both leave in one
        send. See :class:`FileBody` for ``on_done``.
        """
        if self._closed or self._closing:
            if on_done is not None:
                on_done(False)
            return
        copy = self._copy_bodies
        if copy and not self._queue and len(head) + count <= COPY_CHUNK:
            self._send_small_copied(head, fd, offset, count, on_done)
            return
        if head:
            self.write_more(head)
            if self._closed:
                if on_done is not None:
                    on_done(False)
                return
        if count <= 0:
            if on_done is not None:
                on_done(True)
            return
        if not self._queue and not copy and count <= SENDFILE_CHUNK:
            # Fast path (small files): one sendfile() that usually sends it all, no FileBody.
            try:
                sent = os.sendfile(self.fd, fd, offset, count)
            except OSError:
                sent = 0  # the queued path below retries and handles every error
            if sent:
                self.bytes_out += sent
                if sent == count:
                    if on_done is not None:
                        on_done(True)
                    return
                offset += sent
                count -= sent
        self._queue.append(FileBody(fd, offset, count, on_done, copy))  # type: ignore[arg-type]
        self._flush()
        if not self._closed:
            self._update_events()

    def _send_small_copied(
        self,
        head: Buffer,
        fd: int,
        offset: int,
        count: int,
        on_done: OnDone | None,
    ) -> None:
        """Copy mode, nothing queued: head and body into the copy buffer, one send."""
        view = self.ctx.copy.view
        h = len(head)
        view[:h] = head
        try:
            n = os.preadv(fd, [view[h : h + count]], offset) if count else 0
        except OSError as err:
            n = -1
            log.warning("connection %s: reading the file failed: %s", self.peer, err)
        if n != count:
            if n >= 0:
                self._file_truncated()
            else:
                self.ctx.stats.errors += 1
                self.abort()
            if on_done is not None:
                on_done(False)
            return
        total = h + count
        try:
            sent = self._send(view[:total])
        except BlockingIOError:
            sent = 0
        except OSError as err:
            self._fail(err)
            if on_done is not None:
                on_done(False)
            return
        self.bytes_out += sent
        if sent == total:
            if on_done is not None:
                on_done(True)
            return
        # The socket took part of it: queue the rest of the head (copied) and the rest of the
        # body (read again from the file when the socket has room).
        if sent < h:
            self._enqueue(head, sent)
            sent = h
        self._queue.append(  # type: ignore[arg-type]
            FileBody(fd, offset + sent - h, count - (sent - h), on_done, True)
        )
        self._update_events()

    def pause_reading(self) -> None:
        """The handler has enough to do: stop reading until :meth:`resume_reading`."""
        if not self._held:
            self._held = True
            self._update_events()

    def resume_reading(self) -> None:
        if self._held:
            self._held = False
            self._update_events()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return self.loop.call_later(delay, callback)

    def time(self) -> float:
        """The loop's clock (monotonic seconds, refreshed once per wake-up)."""
        return self.loop.now

    def close(self) -> None:
        """Graceful: stop reading, send what is queued, then close."""
        if self._closed:
            return
        self._closing = True
        if self._queue:
            self._update_events()
        else:
            self._finish()

    def abort(self) -> None:
        if self._closed:
            return
        self._queued_bytes = 0
        self._finish()  # drops the queue, releasing its file bodies

    # -- internals ----------------------------------------------------------------------------
    def _flush(self) -> None:
        queue = self._queue
        while queue:
            item = queue[0]
            if type(item) is FileBody:
                if not self._send_file(item):
                    return
                queue.popleft()
                if item.on_done is not None:
                    # May write the next response: the queue is consistent again by now.
                    item.on_done(True)
                continue
            try:
                sent = self._send(item)
            except BlockingIOError:
                return
            except OSError as err:
                self._fail(err)
                return
            self.bytes_out += sent
            self._queued_bytes -= sent
            if sent < len(item):
                queue[0] = item[sent:]
                return
            queue.popleft()

    def _send_file(self, body: FileBody) -> bool:
        """Send as much of ``body`` as the socket takes; True when it is all sent."""
        while body.remaining:
            if body.copy:
                return self._copy_file(body)
            want = min(body.remaining, SENDFILE_CHUNK)
            try:
                sent = os.sendfile(self.fd, body.fd, body.offset, want)
            except BlockingIOError:
                return False
            except OSError as err:
                if err.errno in _NO_SENDFILE_ERRNOS:
                    # This file cannot be sendfile'd (e.g. a filesystem without splice
                    # support): fall back to read+send for the rest of this body.
                    log.info("connection %s: sendfile failed (%s); copying instead", self.peer, err)
                    body.copy = True
                    continue
                self._fail(err)
                return False
            if sent == 0:
                self._file_truncated()
                return False
            body.offset += sent
            body.remaining -= sent
            self.bytes_out += sent
            if sent < want and body.remaining:
                # The socket is full: wait for EVENT_WRITE rather than pay for an EAGAIN (a
                # syscall and a Python exception) on every wake-up, as nginx does.
                return False
        return True

    def _copy_file(self, body: FileBody) -> bool:
        """The read+send fallback: pread into the server's copy buffer, send from it.

        Offsets advance by what the socket took, so a partial send needs no copy of its
        remainder: the server remembers which body's bytes its buffer holds and resends from
        there if the same body comes back first, and reads them again otherwise.
        """
        copy = self.ctx.copy
        view = copy.view
        while body.remaining:
            start = body.offset - copy.offset
            if copy.owner is body and 0 <= start < copy.length:
                chunk = view[start : copy.length]
            else:
                try:
                    n = os.preadv(body.fd, [view[: min(body.remaining, len(view))]], body.offset)
                except OSError as err:
                    copy.owner = None
                    self._fail(err)
                    return False
                if n == 0:
                    copy.owner = None
                    self._file_truncated()
                    return False
                copy.owner, copy.offset, copy.length = body, body.offset, n
                chunk = view[:n]
            try:
                sent = self._send(chunk)
            except BlockingIOError:
                return False
            except OSError as err:
                self._fail(err)
                return False
            body.offset += sent
            body.remaining -= sent
            self.bytes_out += sent
            if sent < len(chunk):
                return False  # the socket is full; a chunk never reaches past the body's end
        copy.owner = None
        return True

    def _file_truncated(self) -> None:
        # The file shrank under us: the promised length cannot be delivered, and the client
        # can only tell from a short body and a closed connection. This costs one connection.
        self.ctx.stats.errors += 1
        log.warning("connection %s: file truncated while sending; closing", self.peer)
        self.abort()

    def _pause_reading(self) -> None:
        if not self._paused:
            self._paused = True
            self.ctx.stats.read_pauses += 1
            self._update_events()

    def _fail(self, err: OSError) -> None:
        if err.errno in _RESET_ERRNOS:
            self.ctx.stats.resets += 1
        else:
            self.ctx.stats.errors += 1
            log.warning("connection %s: %s", self.peer, err)
        self.abort()

    def _finish(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._events:
            self.loop.unregister(self.fd)
            self._events = 0
        self.sock.close()
        if self._queue:
            self._drop_queue()
        self.handler.connection_lost()
        self.ctx.on_closed(self)

    def _drop_queue(self) -> None:
        """Forget what was not sent; tell every file body's owner (it closes the file)."""
        bodies = [item for item in self._queue if type(item) is FileBody]
        self._queue.clear()
        self._queued_bytes = 0
        for body in bodies:
            if self.ctx.copy.owner is body:
                self.ctx.copy.owner = None
            if body.on_done is not None:
                try:
                    body.on_done(False)
                except Exception:
                    self.ctx.stats.errors += 1
                    log.exception("connection %s: releasing a file body failed", self.peer)
