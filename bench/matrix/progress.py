"""What is running and how much is left: a rich progress bar on a terminal, plain lines else.

Work is counted in estimated seconds (a 1 MiB pyperf round is not a 64 B load run), and the
remaining time is the remaining estimate scaled by how fast the estimate has been so far.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """``begin`` per experiment, ``step(what)`` before and ``advance(est)`` after each
    measurement, ``end`` after the experiment, ``close`` at the end."""

    def __init__(self, total_est: float, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.total = max(total_est, 1e-9)
        self.done = 0.0
        self.started = time.monotonic()
        self._exp = ""
        self._exp_start = 0.0
        self._rich = None
        if self.stream.isatty():
            try:
                from rich.progress import BarColumn, TextColumn
                from rich.progress import Progress as RichProgress
            except ImportError:
                pass
            else:
                self._rich = RichProgress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    TextColumn("{task.percentage:>3.0f}%  {task.fields[eta]}"),
                    transient=False,
                )
                self._task = self._rich.add_task("starting", total=self.total, eta="")
                self._rich.start()

    def eta(self) -> str:
        elapsed = time.monotonic() - self.started
        if self.done <= 0:
            return "left: ~" + _fmt(self.total)
        return "left: ~" + _fmt((self.total - self.done) * elapsed / self.done)

    def begin(self, name: str, units: int, est: float) -> None:
        self._exp, self._exp_start = name, time.monotonic()
        if self._rich is None:
            print(
                f"bench: {name}: {units} measurements, estimated {_fmt(est)} ({self.eta()})",
                file=self.stream,
                flush=True,
            )

    def step(self, what: str) -> None:
        """Say what runs now (only on a terminal: plain output has one line per experiment)."""
        if self._rich is not None:
            self._rich.update(self._task, description=f"{self._exp}: {what}", eta=self.eta())

    def advance(self, est: float) -> None:
        """Count a finished measurement by its estimated seconds."""
        self.done = min(self.total, self.done + est)
        if self._rich is not None:
            self._rich.update(self._task, completed=self.done, eta=self.eta())

    def note(self, text: str) -> None:
        """A line worth keeping (a rerun, a restart that failed), on any output."""
        if self._rich is not None:
            self._rich.console.print(f"bench: {self._exp}: {text}")
        else:
            print(f"bench: {self._exp}: {text}", file=self.stream, flush=True)

    def end(self) -> None:
        if self._rich is None:
            took = time.monotonic() - self._exp_start
            print(f"bench: {self._exp}: done in {_fmt(took)}", file=self.stream, flush=True)

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None


def _fmt(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
