"""The event loop: one ``selectors.DefaultSelector`` (epoll on Linux), timers and signals.

Each registered file object has a callback; the loop calls it with the ready events. That is the
whole dispatch: no futures, no tasks, nothing allocated per event.

Callbacks receive epoll-style bits. Test them with ``events & READABLE`` (data, EOF, error or
hang-up: a recv will tell which) and ``events & WRITABLE`` (room, error or hang-up: a send will
tell which) -- the same mapping ``selectors.EpollSelector`` applies.
"""

from __future__ import annotations

import heapq
import logging
import select
import selectors
import signal
import socket
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

EVENT_READ = selectors.EVENT_READ
EVENT_WRITE = selectors.EVENT_WRITE

EventCallback = Callable[[int], None]

_EPOLLIN = getattr(select, "EPOLLIN", 1)
_EPOLLOUT = getattr(select, "EPOLLOUT", 4)
# Anything but "only writable" means there is something to read (or an error/EOF to collect);
# anything but "only readable" means a send would not block (or would report the error).
READABLE = ~_EPOLLOUT
WRITABLE = ~_EPOLLIN


class Timer:
    """A scheduled call; ``cancel()`` makes it a no-op (it stays in the heap until due)."""

    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: Timer) -> bool:
        return self.when < other.when


class SavedSignals:
    """The signal handlers and the wakeup fd a loop replaced, so that :meth:`restore` puts them
    back (or what the caller asked for instead). Both engines' loops use it."""

    def __init__(self) -> None:
        self._previous: dict[int, object] = {}
        self._old_wakeup_fd: int | None = None

    def wake(self, fd: int) -> None:
        """Have each signal write its number to ``fd`` (once; the first call wins)."""
        if self._old_wakeup_fd is None:
            self._old_wakeup_fd = signal.set_wakeup_fd(fd, warn_on_full_buffer=False)

    def handle(
        self, signum: int, handler: Callable[[int, object], None], after: object = None
    ) -> None:
        """Install ``handler``; :meth:`restore` puts back the previous one, or ``after``."""
        previous = signal.signal(signum, handler)
        self._previous[signum] = previous if after is None else after

    def restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)  # type: ignore[arg-type]
        self._previous.clear()
        if self._old_wakeup_fd is not None:
            signal.set_wakeup_fd(self._old_wakeup_fd)
            self._old_wakeup_fd = None


class EventLoop:
    """Runs callbacks for ready file objects, due timers and received signals until stopped."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self._callbacks: dict[int, EventCallback] = {}
        # With epoll we dispatch straight from the selector's own epoll object, by fd, instead of
        # through selector.select(): that builds a (SelectorKey, mask) list and looks up a key
        # per event, which cost ~20% of a 64 B echo (shared/benchmarking.md; measured again in
        # the commit that added this). Registration still goes through the selector, so its
        # bookkeeping stays right and any other selector works through the fallback below.
        self._epoll = (
            self.selector._selector  # type: ignore[attr-defined]
            if isinstance(self.selector, getattr(selectors, "EpollSelector", ()))
            else None
        )  # Refreshed once per wake-up: callbacks read it instead of calling the clock themselves.
        self.now = time.monotonic()
        self._timers: list[Timer] = []
        self._running = False
        self._signal_callbacks: dict[int, Callable[[int], None]] = {}
        self._pending_signals: list[int] = []
        self._saved_signals = SavedSignals()
        # A socketpair wakes select() for signals (set_wakeup_fd) and for stop() from threads.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.selector.register(self._wake_r, EVENT_READ, self._on_wake)

    # -- registration -------------------------------------------------------------------------
    def register(self, fileobj: socket.socket | int, events: int, callback: EventCallback) -> None:
        """Call ``callback(events)`` when ``fileobj`` is ready for ``events`` (EVENT_READ/WRITE)."""
        key = self.selector.register(fileobj, events, callback)
        self._callbacks[key.fd] = callback

    def modify(self, fileobj: socket.socket | int, events: int, callback: EventCallback) -> None:
        key = self.selector.modify(fileobj, events, callback)
        self._callbacks[key.fd] = callback

    def unregister(self, fileobj: socket.socket | int) -> None:
        try:
            key = self.selector.unregister(fileobj)
        except (KeyError, ValueError):
            return
        self._callbacks.pop(key.fd, None)

    # -- timers -------------------------------------------------------------------------------
    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(time.monotonic() + delay, callback)
        heapq.heappush(self._timers, timer)
        return timer

    def call_every(self, interval: float, callback: Callable[[], None]) -> Timer:
        """Call ``callback`` every ``interval`` seconds; cancel the returned handle to stop."""
        handle = Timer(0.0, callback)

        def tick() -> None:
            if handle.cancelled:
                return
            callback()
            self.call_later(interval, tick)

        self.call_later(interval, tick)
        return handle

    # -- signals ------------------------------------------------------------------------------
    def add_signal_handler(
        self,
        signum: int,
        callback: Callable[[int], None],
        after: signal.Handlers | None = None,
    ) -> None:
        """Run ``callback(signum)`` from the loop (not from the signal handler) on ``signum``.

        :meth:`close` puts back the handler that was there before, or ``after`` when given: a
        process that exits once its loop is done passes ``signal.SIG_IGN``, so a late signal
        between the loop's end and the exit cannot kill it with the default action.
        Only in the main thread, as the ``signal`` module requires.
        """
        self._saved_signals.wake(self._wake_w.fileno())
        self._signal_callbacks[signum] = callback
        self._saved_signals.handle(signum, self._record_signal, after)

    def _record_signal(self, signum: int, frame: object) -> None:
        # Runs between bytecodes in the main thread; the wakeup fd makes select() return.
        self._pending_signals.append(signum)

    def _on_wake(self, mask: int) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass

    def wake(self) -> None:
        """Make a blocked ``select()`` return; safe from any thread."""
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # the buffer is full, so a wake-up is already pending; or we are closed

    # -- running ------------------------------------------------------------------------------
    def stop(self) -> None:
        """Leave ``run()`` after the current iteration; safe from any thread."""
        self._running = False
        if threading.current_thread() is not threading.main_thread():
            self.wake()

    def run(self) -> None:
        self._running = True
        poll = self._epoll.poll if self._epoll is not None else self._poll_selector
        callbacks = self._callbacks
        timers = self._timers
        monotonic = time.monotonic
        self.now = monotonic()
        while self._running:
            try:
                # The timeout counts from the clock read after the previous poll: a timer fires
                # late by at most one batch's work, and a wake-up reads the clock once.
                ready = poll(max(0.0, timers[0].when - self.now)) if timers else poll()
            except InterruptedError:
                ready = ()
            self.now = monotonic()
            for fd, events in ready:
                try:
                    callback = callbacks[fd]
                except KeyError:
                    continue  # a callback unregistered a later fd of this batch: skip it
                callback(events)
            if self._pending_signals:
                self._dispatch_signals()
            while timers and timers[0].when <= self.now:
                timer = heapq.heappop(timers)
                if not timer.cancelled:
                    timer.callback()

    def _poll_selector(self, timeout: float = -1.0) -> list[tuple[int, int]]:
        """The portable path: selector.select(), masks translated to epoll-style bits."""
        ready = self.selector.select(None if timeout < 0 else timeout)
        return [
            (
                key.fd,
                (_EPOLLIN if mask & EVENT_READ else 0) | (_EPOLLOUT if mask & EVENT_WRITE else 0),
            )
            for key, mask in ready
        ]

    def _dispatch_signals(self) -> None:
        pending, self._pending_signals = self._pending_signals, []
        for signum in pending:
            callback = self._signal_callbacks.get(signum)
            if callback is not None:
                callback(signum)

    def close(self) -> None:
        self._saved_signals.restore()
        self.selector.close()
        self._wake_r.close()
        self._wake_w.close()
