"""How busy the population server is during a phase, from its own Prometheus metrics.

vLLM serves ``/metrics`` (Prometheus text): ``vllm:num_requests_running`` and
``vllm:num_requests_waiting`` (gauges) and ``vllm:generation_tokens_total`` (a counter),
one series per engine and model label. A sampler thread reads them every
``interval`` seconds while a phase runs and sums the series (data-parallel engines,
several servers). The busy share is the share of samples with a request running: a
phase that leaves the server idle between micro-batches shows it at once, next to the
tokens per second the server generated (every request, whoever sent it).

A server without ``/metrics`` (or one that stops answering) gives no samples, and the
phase simply has no utilization record.
"""

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

log = logging.getLogger(__name__)

RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
GENERATED = "vllm:generation_tokens_total"


def parse_metrics(
    text: str, names: Sequence[str] = (RUNNING, WAITING, GENERATED)
) -> dict[str, float]:
    """Sum of every series of each metric in ``names`` in a Prometheus text page."""
    totals = dict.fromkeys(names, 0.0)
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in totals:
            try:
                totals[name] += float(line.rsplit(" ", 1)[1])
            except (IndexError, ValueError):
                continue
    return totals


@dataclass(frozen=True)
class Sample:
    """One reading of the servers' metrics."""

    at: float
    running: float
    waiting: float
    generated: float


@dataclass(frozen=True)
class Utilization:
    """A phase's server utilization."""

    seconds: float
    samples: int
    busy_share: float
    """Share of samples with at least one request running."""
    mean_running: float
    max_running: float
    mean_waiting: float
    tokens_per_s: float
    """Generated tokens per second over the phase (the counter's growth)."""

    def as_dict(self) -> dict[str, float | int]:
        """Rounded, for ``metrics.jsonl``."""
        return {
            "seconds": round(self.seconds, 2),
            "samples": self.samples,
            "busy_share": round(self.busy_share, 3),
            "mean_running": round(self.mean_running, 2),
            "max_running": self.max_running,
            "mean_waiting": round(self.mean_waiting, 2),
            "tokens_per_s": round(self.tokens_per_s, 1),
        }

    def line(self) -> str:
        """``busy 83%, 12.0 running, 150 tokens/s``."""
        return (
            f"busy {self.busy_share:.0%}, {self.mean_running:.1f} running, "
            f"{self.tokens_per_s:.0f} tokens/s"
        )


def summarize(samples: Sequence[Sample]) -> Utilization | None:
    """The utilization over ``samples`` (None with fewer than two)."""
    if len(samples) < 2:
        return None
    seconds = samples[-1].at - samples[0].at
    generated = max(0.0, samples[-1].generated - samples[0].generated)
    return Utilization(
        seconds=seconds,
        samples=len(samples),
        busy_share=sum(s.running > 0 for s in samples) / len(samples),
        mean_running=sum(s.running for s in samples) / len(samples),
        max_running=max(s.running for s in samples),
        mean_waiting=sum(s.waiting for s in samples) / len(samples),
        tokens_per_s=generated / seconds if seconds > 0 else 0.0,
    )


def window_rate(samples: Sequence[Sample], window: float | None = None) -> float | None:
    """Generated tokens/s over the last ``window`` seconds of ``samples`` (all with None).

    The window starts at the latest sample at least ``window`` seconds before the last
    one (or the first sample), so it spans at least ``window`` seconds once that much
    was sampled: what vLLM's own throughput log line averages over (about 10 s). A
    counter that went back (a restarted server) counts as no tokens, not as negative.

    Returns:
        Tokens per second, or None with fewer than two samples or no time between them.
    """
    if len(samples) < 2:
        return None
    last = samples[-1]
    first = samples[0]
    if window is not None:
        before = [s for s in samples[:-1] if s.at <= last.at - window]
        first = before[-1] if before else samples[0]
    seconds = last.at - first.at
    if seconds <= 0:
        return None
    return max(0.0, last.generated - first.generated) / seconds


class UtilizationSampler:
    """Reads the servers' ``/metrics`` on a thread between ``start`` and ``stop``."""

    def __init__(self, urls: Sequence[str], interval: float = 0.5) -> None:
        self.urls = [u.rstrip("/").removesuffix("/v1") for u in urls]
        self.interval = interval
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="acdc-metrics")

    def start(self) -> "UtilizationSampler":
        """Start sampling (the first reading is taken at once)."""
        self._thread.start()
        return self

    def stop(self) -> Utilization | None:
        """Take a last reading, stop, and summarize (None when nothing could be read)."""
        self._stop.set()
        self._thread.join(timeout=10)
        return summarize(self.samples)

    def rate(self, window: float | None = None) -> float | None:
        """Generated tokens/s so far (:func:`window_rate`); fits ``Progress(rate=...)``."""
        return window_rate(list(self.samples), window)

    def read(self, client: httpx.Client) -> Sample | None:
        """One reading summed over the servers; None when one does not answer."""
        totals = dict.fromkeys((RUNNING, WAITING, GENERATED), 0.0)
        for url in self.urls:
            try:
                reply = client.get(f"{url}/metrics")
            except httpx.HTTPError:
                return None
            if reply.status_code != 200:
                return None
            for name, value in parse_metrics(reply.text).items():
                totals[name] += value
        return Sample(time.monotonic(), totals[RUNNING], totals[WAITING], totals[GENERATED])

    def _loop(self) -> None:
        with httpx.Client(timeout=2.0) as client:
            while True:
                sample = self.read(client)
                if sample is not None:
                    self.samples.append(sample)
                elif not self.samples:
                    return  # no metrics here (an attached server without /metrics)
                if self._stop.wait(self.interval):
                    last = self.read(client)
                    if last is not None:
                        self.samples.append(last)
                    return
