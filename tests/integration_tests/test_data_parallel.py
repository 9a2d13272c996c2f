"""vLLM data parallel on the real CPU build: two engines behind one endpoint.

acdc loads each adapter once per endpoint; this checks that vLLM forwards that one
runtime ``load_lora_adapter`` to both engines, so requests for the adapter succeed on
whichever engine vLLM's balancer picks (each engine counts its own successes in
``/metrics``).
"""

import asyncio
import dataclasses
import re
from collections.abc import Iterator

import httpx
import pytest

from acdc.context import Context
from acdc.population.bootstrap import Population, make_breeder
from acdc.population.client import PopulationClient
from acdc.population.server import PopulationServer
from tests.integration_tests.conftest import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dp_server(ctx: Context, population: Population) -> Iterator[PopulationServer]:
    two = dataclasses.replace(ctx, run_id="dp", vllm_port=free_port(), data_parallel_size=2)
    with PopulationServer(two, population.base_dir) as running:
        yield running


def successes_per_engine(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("vllm:request_success_total{"):
            engine = re.search(r'engine="(\d+)"', line)
            if engine:
                counts[engine[1]] = counts.get(engine[1], 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def test_one_adapter_load_serves_requests_on_both_engines(
    dp_server: PopulationServer, ctx: Context, population: Population
) -> None:
    child = make_breeder(ctx, population).breed(population.seed_ids, seed=11, generation=1).id
    before = successes_per_engine(dp_server.url)

    async def scenario() -> list[str]:
        client = PopulationClient(dp_server.url, population.store, base_id="base", max_loaded=2)
        try:
            question = [{"role": "user", "content": "Name a colour."}]
            replies = await asyncio.gather(
                *(client.chat(child, question, max_tokens=4) for _ in range(8))
            )
            return [r.expert_id for r in replies]
        finally:
            await client.aclose()

    served = asyncio.run(scenario())
    assert served == [child] * 8
    loads = [line for line in dp_server.log_tail(2000).splitlines() if "load_lora_adapter" in line]
    after = successes_per_engine(dp_server.url)
    gained = {e: after.get(e, 0.0) - before.get(e, 0.0) for e in after}
    assert set(gained) == {"0", "1"}, after
    assert sum(gained.values()) == 8
    assert min(gained.values()) > 0, f"one engine served nothing: {gained}; {loads}"
