"""The event loop: one ``selectors.DefaultSelector`` (epoll on Linux), timers and signals.

Each registered file object carries a callback in ``SelectorKey.data``; the loop calls it with
the ready event mask. That is the whole dispatch: no futures, no tasks, nothing allocated per
event beyond what ``selectors`` itself builds.
"""

from __future__ import annotations

import heapq
import logging
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


class EventLoop:
    """Runs callbacks for ready file objects, due timers and received signals until stopped."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        # Refreshed once per wake-up: callbacks read it instead of calling the clock themselves.
        self.now = time.monotonic()
        self._timers: list[Timer] = []
        self._running = False
        self._signal_callbacks: dict[int, Callable[[int], None]] = {}
        self._pending_signals: list[int] = []
        self._previous_handlers: dict[int, object] = {}
        self._old_wakeup_fd: int | None = None
        # A socketpair wakes select() for signals (set_wakeup_fd) and for stop() from threads.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.selector.register(self._wake_r, EVENT_READ, self._on_wake)

    # -- registration -------------------------------------------------------------------------
    def register(self, fileobj: socket.socket | int, events: int, callback: EventCallback) -> None:
        self.selector.register(fileobj, events, callback)

    def modify(self, fileobj: socket.socket | int, events: int, callback: EventCallback) -> None:
        self.selector.modify(fileobj, events, callback)

    def unregister(self, fileobj: socket.socket | int) -> None:
        try:
            self.selector.unregister(fileobj)
        except (KeyError, ValueError):
            pass

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
    def add_signal_handler(self, signum: int, callback: Callable[[int], None]) -> None:
        """Run ``callback(signum)`` from the loop (not from the signal handler) on ``signum``.

        Only in the main thread, as the ``signal`` module requires.
        """
        if self._old_wakeup_fd is None:
            self._old_wakeup_fd = signal.set_wakeup_fd(
                self._wake_w.fileno(), warn_on_full_buffer=False
            )
        self._signal_callbacks[signum] = callback
        self._previous_handlers[signum] = signal.signal(signum, self._record_signal)

    def _record_signal(self, signum: int, frame: object) -> None:
        # Runs between bytecodes in the main thread; the wakeup fd makes select() return.
        self._pending_signals.append(signum)

    def _restore_signals(self) -> None:
        for signum, previous in self._previous_handlers.items():
            signal.signal(signum, previous)  # type: ignore[arg-type]
        self._previous_handlers.clear()
        if self._old_wakeup_fd is not None:
            signal.set_wakeup_fd(self._old_wakeup_fd)
            self._old_wakeup_fd = None

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
        select = self.selector.select
        timers = self._timers
        while self._running:
            timeout: float | None = None
            if timers:
                timeout = max(0.0, timers[0].when - time.monotonic())
            events = select(timeout)
            self.now = time.monotonic()
            for key, mask in events:
                key.data(mask)
            if self._pending_signals:
                self._dispatch_signals()
            while timers and timers[0].when <= self.now:
                timer = heapq.heappop(timers)
                if not timer.cancelled:
                    timer.callback()

    def _dispatch_signals(self) -> None:
        pending, self._pending_signals = self._pending_signals, []
        for signum in pending:
            callback = self._signal_callbacks.get(signum)
            if callback is not None:
                callback(signum)

    def close(self) -> None:
        self._restore_signals()
        self.selector.close()
        self._wake_r.close()
        self._wake_w.close()
