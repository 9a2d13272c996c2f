"""Server utilization from Prometheus text, and each role's concurrency from the server.

The metrics server here is a tiny HTTP server whose counters move as a busy vLLM's
would; the names and label layout are vLLM's (checked on the real server in
tests/integration_tests/test_population_server.py).
"""

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from acdc.context import ConfigError, Context
from acdc.costs import CostLedger
from acdc.graphs.watch import generation_usage, usage_lines, watch
from acdc.models import RoleSettings, subject_concurrency
from acdc.population.utilization import UtilizationSampler, parse_metrics
from acdc.rundir import RunDir

PAGE = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{{engine="0",model_name="base"}} {running}
vllm:num_requests_running{{engine="1",model_name="base"}} {running}
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{{engine="0",model_name="base"}} {waiting}
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{{engine="0",model_name="base"}} {tokens}
vllm:generation_tokens_created{{engine="0",model_name="base"}} 1.7e9
"""


def test_parse_sums_every_engine_and_skips_other_metrics() -> None:
    text = PAGE.format(running=3.0, waiting=2.0, tokens=1.5e3)
    assert parse_metrics(text) == {
        "vllm:num_requests_running": 6.0,
        "vllm:num_requests_waiting": 2.0,
        "vllm:generation_tokens_total": 1500.0,
    }


class BusyServer:
    """Serves ``/metrics``: requests run for ``busy`` seconds at 200 tokens/s, then idle."""

    def __init__(self, busy: float) -> None:
        started = time.monotonic()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                now = time.monotonic() - started
                running = 4 if now < busy else 0
                body = PAGE.format(running=running, waiting=0, tokens=200 * min(now, busy))
                data = body.encode()
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=owner.server.serve_forever, args=(0.02,), daemon=True).start()


@pytest.fixture
def busy_half() -> Iterator[BusyServer]:
    server = BusyServer(busy=1.0)
    yield server
    server.server.shutdown()


def test_the_sampler_measures_busy_share_and_tokens_per_second(busy_half: BusyServer) -> None:
    sampler = UtilizationSampler([busy_half.url + "/v1"], interval=0.1).start()
    time.sleep(2.0)
    used = sampler.stop()
    assert used is not None and used.samples >= 10
    assert 0.35 <= used.busy_share <= 0.65  # busy for 1 s of 2
    assert used.max_running == 8.0  # two engines, four each
    assert 80 <= used.tokens_per_s <= 120  # 200 tokens over 2 s
    assert "busy" in used.line() and used.as_dict()["busy_share"] == round(used.busy_share, 3)


def test_a_server_without_metrics_gives_no_utilization() -> None:
    sampler = UtilizationSampler(["http://127.0.0.1:9"], interval=0.05).start()
    assert sampler.stop() is None


def test_roles_on_the_population_server_take_its_capacity_unless_set() -> None:
    ctx = Context(max_num_seqs=96)
    assert RoleSettings.of(ctx, "judge").concurrency == 96
    engines = Context(max_num_seqs=96, data_parallel_size=2)
    assert RoleSettings.of(engines, "judge").concurrency == 192
    hosted = Context(max_num_seqs=96, judge_model="openai:gpt-4o-mini")
    assert RoleSettings.of(hosted, "judge").concurrency == 8
    elsewhere = Context(max_num_seqs=96, scientist_base_url="http://127.0.0.1:1/v1")
    assert RoleSettings.of(elsewhere, "scientist").concurrency == 8
    assert RoleSettings.of(Context(curator_concurrency=3), "curator").concurrency == 3


def test_expert_answers_fill_every_population_server_unless_set() -> None:
    assert subject_concurrency(Context(max_num_seqs=96)) == 96
    assert subject_concurrency(Context(max_num_seqs=96, data_parallel_size=2)) == 192
    two = Context(max_num_seqs=96, server_urls=["http://127.0.0.1:1", "http://127.0.0.1:2"])
    assert subject_concurrency(two) == 192
    assert subject_concurrency(Context(max_num_seqs=96, subject_concurrency=5)) == 5
    with pytest.raises(ConfigError, match="subject_concurrency"):
        Context(subject_concurrency=-1)


def test_a_watched_phase_logs_and_prints_its_utilization(
    busy_half: BusyServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    res = SimpleNamespace(
        server=SimpleNamespace(urls=[busy_half.url]), run=RunDir(tmp_path), ledger=CostLedger()
    )
    with watch(res, "evaluate", 3):  # type: ignore[arg-type]
        time.sleep(1.5)
    (record,) = [r for r in res.run.metrics.records() if r["event"] == "utilization"]
    assert (record["phase"], record["generation"]) == ("evaluate", 3)
    assert 0.4 <= record["busy_share"] <= 0.9 and record["tokens_per_s"] > 0
    assert "[gen 3 evaluate] server: busy" in capsys.readouterr().out
    usage = generation_usage(res, 3)  # type: ignore[arg-type]
    assert usage["utilization_by_phase"]["evaluate"]["busy_share"] == record["busy_share"]
    assert "server: evaluate busy" in usage_lines(usage)
