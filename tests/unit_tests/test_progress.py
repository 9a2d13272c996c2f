"""Progress lines: the token rate as the server counts it, item rates, watched children."""

import io
import sys
import time

import pytest

from acdc.population.utilization import Sample, window_rate
from acdc.progress import Progress, item_rate, run_watched, step_line


def counter(rates: list[float], start: float = 100.0) -> list[Sample]:
    """Samples one second apart of a counter growing by ``rates[i]`` in second i."""
    samples, total = [Sample(start, 0, 0, 0.0)], 0.0
    for second, rate in enumerate(rates, start=1):
        total += rate
        samples.append(Sample(start + second, 1, 0, total))
    return samples


def test_window_rate_is_the_counters_growth_over_the_last_window() -> None:
    samples = counter([10.0] * 20 + [40.0] * 10)
    assert window_rate(samples, 10.0) == pytest.approx(40.0)
    assert window_rate(samples, None) == pytest.approx((200 + 400) / 30)


def test_window_rate_spans_at_least_the_window_and_uses_all_when_younger() -> None:
    samples = counter([30.0] * 4)
    assert window_rate(samples, 10.0) == pytest.approx(30.0)  # 4 s sampled: all of it
    uneven = [Sample(0.0, 0, 0, 0.0), Sample(7.0, 0, 0, 70.0), Sample(12.0, 0, 0, 170.0)]
    assert window_rate(uneven, 10.0) == pytest.approx(170.0 / 12.0)  # starts at or before


def test_window_rate_without_two_samples_or_after_a_restart() -> None:
    assert window_rate([], 10.0) is None
    assert window_rate([Sample(1.0, 0, 0, 5.0)], 10.0) is None
    restarted = [Sample(0.0, 0, 0, 500.0), Sample(1.0, 0, 0, 20.0)]
    assert window_rate(restarted, 10.0) == 0.0


def test_the_line_takes_the_servers_rate_over_finished_requests_tokens() -> None:
    # The case of issue 21: answers finish in bursts and grading takes time, so their
    # tokens over the elapsed time read far below what the server generates.
    asked: list[float | None] = []

    def server(window: float | None) -> float | None:
        asked.append(window)
        return 42.0 if window is not None else 38.5

    progress = Progress("gen 1 evaluate", 100, io.StringIO(), rate=server)
    progress.started -= 50.0
    progress.update(10, tokens=400)  # own count: 8 tok/s
    assert "42.0 tok/s (server)" in progress.line()
    assert "38.5 tok/s (server)" in progress.line(final=True)
    assert asked[-2:] == [10.0, None]


def test_the_line_falls_back_to_its_own_count_without_server_metrics() -> None:
    progress = Progress("gen 1 evaluate", 100, io.StringIO(), rate=lambda window: None)
    progress.started -= 50.0
    progress.update(10, tokens=400)
    assert "8.0 tok/s" in progress.line()
    assert "(server)" not in progress.line()


def test_item_rates_read_as_items_per_second_or_seconds_per_item() -> None:
    assert item_rate(10, 2.0, "pair") == "5.0 pair/s"
    assert item_rate(2, 30.0, "child") == "15.0 s/child"
    assert item_rate(0, 30.0, "child") == ""


def test_a_wait_shows_what_it_waits_for_and_no_counts() -> None:
    stream = io.StringIO()
    progress = Progress("vllm start", 0, stream, unit="", note="waiting for /health")
    progress.started -= 12.0
    progress.update(0)
    assert stream.getvalue().strip() == "[vllm start] waiting for /health  12s"


def test_a_stage_restarts_the_count_and_its_rate() -> None:
    progress = Progress("seed", 0, io.StringIO(), unit="step")
    progress.stage("planning", 10)
    progress.update(10)
    progress.stage("executing", 4)
    progress.update(1)
    assert "executing  1/4 (25%)" in progress.line()


CHILD = f"""
import sys, time
print({step_line(1, 2, "reading")!r}, flush=True)
sys.stderr.write("Executing graph:  50%|#####     | 5/10 [00:01<00:01]\\r")
sys.stderr.flush()
print({step_line(2, 2, "saving")!r}, flush=True)
print("a warning worth keeping", flush=True)
sys.exit(int(sys.argv[1]))
"""


def test_run_watched_shows_steps_and_keeps_other_output_for_errors() -> None:
    stream = io.StringIO()
    ok = run_watched([sys.executable, "-c", CHILD, "0"], "seed: convert", stream=stream)
    assert ok.returncode == 0
    assert ok.tail == "a warning worth keeping"  # steps and bars are not in the tail
    last = stream.getvalue().strip().splitlines()[-1]
    assert last.startswith("[seed: convert] saving  2/2 (100%)")
    failed = run_watched([sys.executable, "-c", CHILD, "3"], "seed", stream=io.StringIO())
    assert failed.returncode == 3


def test_run_watched_prints_while_a_silent_child_runs() -> None:
    stream = io.StringIO()
    started = time.monotonic()
    run_watched([sys.executable, "-c", "import time; time.sleep(1.5)"], "quiet", stream=stream)
    assert time.monotonic() - started < 10
    lines = stream.getvalue().strip().splitlines()
    assert lines[0].startswith("[quiet] running (pid ")
