"""Progress lines a person can follow: done/total, tokens/s and ETA of the phase at hand.

On a terminal the line is redrawn in place; in a log (CI, ``nohup``) one line is
printed every few seconds and at the end, so logs stay short.
"""

import sys
import time
from typing import TextIO


def duration(seconds: float) -> str:
    """Compact human duration: 45s, 3m05s, 2h07m."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """One phase's progress line."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None, every: float = 5.0):
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.every = every
        self.started = time.monotonic()
        self._last = 0.0
        self._tty = self.stream.isatty()
        self.done = 0
        self.tokens = 0

    def line(self) -> str:
        """The current progress text."""
        elapsed = time.monotonic() - self.started
        rate = self.tokens / elapsed if elapsed > 0 else 0.0
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        eta = ""
        if 0 < self.done < self.total:
            eta = f"  ETA {duration(elapsed / self.done * (self.total - self.done))}"
        return (
            f"[{self.label}] {self.done}/{self.total}{share}  {rate:.1f} tok/s  "
            f"{duration(elapsed)}{eta}"
        )

    def update(self, done: int, total: int | None = None, tokens: int | None = None) -> None:
        """Record progress; print when due."""
        self.done = done
        if total is not None:
            self.total = total
        if tokens is not None:
            self.tokens = tokens
        now = time.monotonic()
        if self._tty:
            self.stream.write("\r\033[K" + self.line())
            self.stream.flush()
        elif now - self._last >= self.every:
            self._last = now
            print(self.line(), file=self.stream, flush=True)

    def finish(self) -> None:
        """Print the final line."""
        end = "\r\033[K" if self._tty else ""
        print(end + self.line(), file=self.stream, flush=True)
