"""Progress lines a person can follow: what runs, done/total, rate and ETA of the phase.

On a terminal the line is redrawn in place; in a log (CI, ``nohup``) one line is
printed every few seconds and at the end, so logs stay short. No phase of a run may be
silent for long: a phase with countable work shows done/total and a rate (tokens/s, or
items/s), a wait shows what it waits for and the seconds so far, and a child process
(``run_watched``) shows the steps or progress bars it reports.

The token rate of a phase that generates through the population server is best read
from the server's own counter (``rate``, see ``population/utilization.py``): counting
the completion tokens of finished requests over the whole elapsed time undercounts
whatever is still in flight, the judge's tokens and the time spent grading.
"""

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TextIO

RateSource = Callable[[float | None], float | None]
"""Tokens/s measured elsewhere (the server's counter): over the last ``window`` seconds,
or over everything it saw with None; None while it has no reading (then the line falls
back to its own count)."""

RATE_WINDOW = 10.0
"""Seconds the live token rate is taken over (vLLM logs its throughput every ~10 s)."""


def duration(seconds: float) -> str:
    """Compact human duration: 45s, 3m05s, 2h07m."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def item_rate(count: int, seconds: float, unit: str) -> str:
    """``12.0 pair/s`` for fast items, ``3.5 s/pair`` for slow ones ("" before the first).

    Slow items (a child bred, a calibration pair graded) read better as seconds apiece.
    """
    if count <= 0 or seconds <= 0:
        return ""
    per_second = count / seconds
    if per_second >= 1.0:
        return f"{per_second:.1f} {unit}/s"
    return f"{1.0 / per_second:.1f} s/{unit}"


class Progress:
    """One phase's progress line.

    Args:
        label: What runs, in brackets at the start of the line.
        total: How many items the phase has (0: a wait with nothing to count).
        stream: Where lines go (stderr by default, away from the results on stdout).
        every: Seconds between lines in a log (a terminal redraws on every update).
        unit: ``"tok"``: the rate is tokens/s (``tokens`` of :meth:`update`, or ``rate``);
            another word: the rate is items of that name per second (or seconds per
            item); ``""``: no rate (a wait).
        rate: Tokens/s measured elsewhere (the server's counter), preferred to the line's
            own count when it has a reading.
        note: What the phase is doing now, shown after the label.
    """

    def __init__(
        self,
        label: str,
        total: int,
        stream: TextIO | None = None,
        every: float = 5.0,
        *,
        unit: str = "tok",
        rate: RateSource | None = None,
        note: str = "",
    ) -> None:
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.every = every
        self.unit = unit
        self.rate = rate
        self.note = note
        self.started = time.monotonic()
        self._stage_started = self.started
        self._last = 0.0
        self._tty = self.stream.isatty()
        self.done = 0
        self.tokens = 0

    def token_rate(self, final: bool = False) -> tuple[float, bool]:
        """Tokens/s now (the last ``RATE_WINDOW`` s) or, ``final``, over the whole phase.

        Returns:
            The rate, and whether it came from ``rate`` (the server) rather than the
            line's own count of finished requests' tokens over the elapsed time.
        """
        if self.rate is not None:
            measured = self.rate(None if final else RATE_WINDOW)
            if measured is not None:
                return measured, True
        elapsed = time.monotonic() - self.started
        return (self.tokens / elapsed if elapsed > 0 else 0.0), False

    def line(self, final: bool = False) -> str:
        """The current progress text (``final``: the rate over the whole phase)."""
        now = time.monotonic()
        elapsed = now - self.started
        parts = [self.note] if self.note else []
        if self.total or self.done:
            share = f" ({self.done / self.total:.0%})" if self.total else ""
            parts.append(f"{self.done}/{self.total}{share}")
        if self.unit == "tok":
            rate, measured = self.token_rate(final)
            parts.append(f"{rate:.1f} tok/s" + (" (server)" if measured else ""))
        elif self.unit:
            rate_text = item_rate(self.done, now - self._stage_started, self.unit)
            if rate_text:
                parts.append(rate_text)
        parts.append(duration(elapsed))
        if 0 < self.done < self.total:
            stage = now - self._stage_started
            parts[-1] += f"  ETA {duration(stage / self.done * (self.total - self.done))}"
        return f"[{self.label}] " + "  ".join(parts)

    def update(
        self,
        done: int,
        total: int | None = None,
        tokens: int | None = None,
        note: str | None = None,
    ) -> None:
        """Record progress; print when due."""
        self.done = done
        if total is not None:
            self.total = total
        if tokens is not None:
            self.tokens = tokens
        if note is not None:
            self.note = note
        now = time.monotonic()
        if self._tty:
            self.stream.write("\r\033[K" + self.line())
            self.stream.flush()
        elif now - self._last >= self.every:
            self._last = now
            print(self.line(), file=self.stream, flush=True)

    def stage(self, note: str, total: int, restart_clock: bool = True) -> None:
        """Start a new stage of the phase: ``done`` (and the item rate's clock) from here.

        ``restart_clock=False`` keeps timing from the phase's start: right for steps that
        began with the phase (a child's first reported step), wrong for a new progress bar.
        """
        self.note = note
        self.total = total
        self.done = 0
        if restart_clock:
            self._stage_started = time.monotonic()

    def finish(self) -> None:
        """Print the final line."""
        end = "\r\033[K" if self._tty else ""
        print(end + self.line(final=True), file=self.stream, flush=True)


STEP_PREFIX = "acdc-step "
"""How a child process run by :func:`run_watched` reports a step on its output."""
_STEP = re.compile(rf"^{STEP_PREFIX}(?P<done>\d+)/(?P<total>\d+)\s*(?P<what>.*)$")
_BAR = re.compile(r"^\s*(?:(?P<what>[^|]*?):\s*)?\d+%\|[^|]*\|\s*(?P<done>\d+)/(?P<total>\d+)")
"""A tqdm progress bar: ``Executing graph:  45%|####  | 95/210 [00:03<...]``."""


def step_line(done: int, total: int, what: str) -> str:
    """The line a child process prints (flushed) to report a step to ``run_watched``."""
    return f"{STEP_PREFIX}{done}/{total} {what}"


@dataclass(frozen=True)
class Finished:
    """How a watched child process ended."""

    returncode: int
    tail: str
    """The last lines of its output (progress bars and step lines left out)."""


@dataclass
class _Seen:
    """What the reader thread last saw the child report."""

    what: str = ""
    done: int = 0
    total: int = 0
    bar: bool = False
    """The last report was a progress bar (timed from its start), not a step line."""


def _read_output(pipe: IO[bytes], tail: deque[str], seen: _Seen) -> None:
    """Read the child's output to its end: steps and bars to ``seen``, the rest to ``tail``."""
    pending = ""
    fd = pipe.fileno()
    while chunk := os.read(fd, 65536):
        pending += chunk.decode("utf-8", errors="replace")
        *lines, pending = re.split(r"[\r\n]", pending)
        for line in lines:
            _take(line, tail, seen)
    _take(pending, tail, seen)


def _take(line: str, tail: deque[str], seen: _Seen) -> None:
    found = _STEP.match(line) or _BAR.match(line)
    if found is None:
        if line.strip():
            tail.append(line)
        return
    seen.what = (found.group("what") or "").strip()
    seen.done, seen.total = int(found.group("done")), int(found.group("total"))
    seen.bar = found.re is _BAR


def run_watched(
    command: Sequence[str],
    label: str,
    *,
    env: Mapping[str, str] | None = None,
    unit: str = "step",
    tail_lines: int = 15,
    stream: TextIO | None = None,
) -> Finished:
    """Run a child process to its end while a progress line says what it is doing.

    Heavy steps (dequantizing a GGUF, extracting an adapter with mergekit) run in child
    processes that print little; the line shows the steps they report (``step_line``) or
    their tqdm bars, and otherwise at least the seconds so far, so nobody watches a
    silent terminal wondering whether the run hangs.

    Args:
        command: The child's command line.
        label: What it does, for the progress line.
        env: Its environment (this process's by default).
        unit: Name of what its steps and bars count.
        tail_lines: How many of its last output lines to keep for an error message.
        stream: Where progress lines go (stderr by default).
    """
    progress = Progress(label, 0, stream, unit=unit, note="starting")
    tail: deque[str] = deque(maxlen=tail_lines)
    seen = _Seen()
    process = subprocess.Popen(
        list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    )
    assert process.stdout is not None
    reader = threading.Thread(
        target=_read_output, args=(process.stdout, tail, seen), daemon=True, name="acdc-watch"
    )
    reader.start()
    try:
        while process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=1.0)
            what, done, total, bar = seen.what, seen.done, seen.total, seen.bar
            if not total:
                progress.update(0, note=f"running (pid {process.pid})")
                continue
            if total != progress.total or done < progress.done:  # a new bar (or steps) begin
                progress.stage(what, total, restart_clock=bar)
            progress.update(done, note=what)
    except BaseException:  # interrupted: the child must not outlive the step it does
        process.kill()
        process.wait()
        raise
    finally:
        reader.join(timeout=5.0)
        process.stdout.close()
    progress.finish()
    return Finished(process.returncode, "\n".join(tail))
