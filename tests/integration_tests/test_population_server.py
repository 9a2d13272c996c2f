"""The real vLLM CPU server hosting the SmolLM2 seed and bred children as LoRA adapters."""

import asyncio
import dataclasses
import json
import os
import re
from pathlib import Path

import httpx
import pytest
import torch

from acdc.context import Context
from acdc.population.bootstrap import Population, make_breeder
from acdc.population.client import AdapterRejectedError, ChatResult, PopulationClient
from acdc.population.experts import CorruptExpertError, ExpertRecord
from acdc.population.gibberish import check_expert
from acdc.population.operators.specialize import Specialize
from acdc.population.server import PopulationServer, ServerError
from acdc.population.utilization import UtilizationSampler

pytestmark = pytest.mark.integration
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def run(coro):
    return asyncio.run(coro)


def with_client(server: PopulationServer, population: Population, scenario, max_loaded: int = 2):
    """Run ``scenario(client)`` in one event loop (an httpx client is bound to its loop)."""

    async def main():
        client = PopulationClient(
            server.url, population.store, base_id="base", max_loaded=max_loaded, backoff=0.05
        )
        try:
            await client.resync()
            return await scenario(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


@pytest.fixture(scope="module")
def children(ctx: Context, population: Population) -> list[str]:
    """Two bred children: a default one and a strongly mutated one."""
    mild = make_breeder(ctx, population).breed(population.seed_ids, seed=1, generation=1)
    strong_ctx = dataclasses.replace(ctx, mutation_sigma=8.0, mutation_keep_rank=16)
    strong = make_breeder(strong_ctx, population).breed([mild.id], seed=2, generation=2)
    return [mild.id, strong.id]


def server_adapters(url: str) -> set[str]:
    data = httpx.get(f"{url}/v1/models", timeout=10).json()["data"]
    return {m["id"] for m in data if m.get("parent")}


def test_each_child_answers_under_its_own_model_id(server, population, children, ctx):
    async def ask(client: PopulationClient) -> list:
        return [
            await client.chat(e, QUESTION, max_tokens=24)
            for e in [ctx.served_model_name, *children]
        ]

    base, mild, strong = with_client(server, population, ask)
    assert "Paris" in base.text
    assert mild.expert_id == children[0] and mild.text.strip()
    assert server_adapters(server.url) == set(children)
    # The adapter is really applied: a strongly mutated child answers differently.
    assert strong.text != base.text
    assert all(r.completion_tokens > 0 for r in (base, mild, strong))


def test_lru_bound_unload_and_reload_on_demand(server, children, ctx, population):
    third = make_breeder(ctx, population).breed(population.seed_ids, seed=3, generation=1).id

    async def scenario(client: PopulationClient) -> None:
        for expert_id in [*children, third]:
            await client.ensure_loaded(expert_id)
        assert client.loaded == [children[1], third]
        assert server_adapters(server.url) == {children[1], third}
        await client.unload(third)
        assert server_adapters(server.url) == {children[1]}
        answer = await client.chat(third, QUESTION, max_tokens=8)
        assert answer.text
        assert server_adapters(server.url) == {children[1], third}

    with_client(server, population, scenario)


def test_concurrent_requests_never_evict_an_adapter_in_use(server, children, population, ctx):
    extra = make_breeder(ctx, population).breed(population.seed_ids, seed=4, generation=1).id
    experts = [*children, extra]

    async def burst(client: PopulationClient) -> list:
        jobs = [client.chat(experts[i % 3], QUESTION, max_tokens=8) for i in range(9)]
        return await asyncio.gather(*jobs)

    results = with_client(server, population, burst)
    assert [r.expert_id for r in results] == [experts[i % 3] for i in range(9)]
    assert all(r.text for r in results)
    assert len(server_adapters(server.url)) <= 2


def test_gibberish_check_passes_a_child_and_fails_a_wrecked_one(server, children, population):
    base = population.base
    rng = torch.Generator().manual_seed(0)
    wrecked = {}
    for module in base.modules:
        out_features, in_features = base.shape(module) or (0, 0)
        wrecked[module] = (
            torch.randn(8, in_features, generator=rng),
            torch.randn(out_features, 8, generator=rng),
        )
    population.store.save(ExpertRecord(id="wrecked", base_model="x"), wrecked, torch.bfloat16)

    async def check(client: PopulationClient) -> tuple:
        return await check_expert(client, children[0]), await check_expert(client, "wrecked")

    good, bad = with_client(server, population, check)
    assert good.ok, good
    assert not bad.ok and bad.reason


def test_a_corrupt_adapter_is_refused_before_it_reaches_the_server(server, population, ctx):
    child = make_breeder(ctx, population).breed(population.seed_ids, seed=9, generation=1).id
    weights = population.store.folder(child) / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(CorruptExpertError, match="checksum"):
        with_client(server, population, lambda c: c.ensure_loaded(child))
    assert child not in server_adapters(server.url)


def test_an_adapter_vllm_refuses_is_a_clear_error(server, population):
    base = population.base
    too_big = {
        m: (
            torch.zeros(32, (base.shape(m) or (0, 0))[1]),
            torch.zeros((base.shape(m) or (0, 0))[0], 32),
        )
        for m in base.modules
    }
    population.store.save(ExpertRecord(id="rank32", base_model="x"), too_big, torch.bfloat16)
    with pytest.raises(AdapterRejectedError, match="vLLM rejected adapter rank32"):
        with_client(server, population, lambda c: c.ensure_loaded("rank32"))


def test_a_mergekit_child_is_served(server, population, ctx, children):
    parents = [population.seed_ids[0], children[0]]
    ties = make_breeder(ctx, population, crossover="ties").breed(parents, seed=5, generation=3)
    assert ties.operators[0]["name"] == "ties"

    async def ask(client: PopulationClient) -> ChatResult:
        return await client.chat(ties.id, QUESTION, max_tokens=16)

    # Served means: vLLM loaded the merged adapter and generated under its id. What the
    # merge says is the model's business (a merge can answer in blanks).
    reply = with_client(server, population, ask)
    assert reply.expert_id == ties.id
    assert reply.completion_tokens > 0 and reply.text
    assert ties.id in server_adapters(server.url)


def test_port_in_use_and_attach(server, ctx, population):
    with pytest.raises(ServerError, match=f"port {ctx.vllm_port} .* is in use"):
        PopulationServer(ctx, population.base_dir).start()
    attached = PopulationServer(dataclasses.replace(ctx, server_url=server.url)).start()
    assert not attached.owned
    attached.stop()
    assert server.healthy()


def test_restart_recovery_reloads_what_is_needed(server, children, population):
    async def scenario(client: PopulationClient) -> tuple[str, str]:
        first = (await client.chat(children[0], QUESTION, max_tokens=16)).text
        assert children[0] in client.loaded
        await asyncio.to_thread(server.restart)
        assert server_adapters(server.url) == set()
        # The client still believes the adapter is loaded; the 404 makes it re-load.
        assert children[0] in client.loaded
        again = (await client.chat(children[0], QUESTION, max_tokens=16)).text
        return first, again

    first, again = with_client(server, population, scenario)
    assert again == first
    assert children[0] in server_adapters(server.url)


def test_a_server_that_cannot_start_reports_its_log(ctx, tmp_path: Path):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    (broken / "model.safetensors").write_bytes(b"")
    bad_ctx = dataclasses.replace(ctx, vllm_port=ctx.vllm_port + 1, server_start_timeout=300)
    with pytest.raises(ServerError, match="exited with code") as info:
        PopulationServer(bad_ctx, broken, log_path=tmp_path / "vllm.log").start()
    assert "no-such-architecture" in str(info.value) or "Error" in str(info.value)


def test_an_unreachable_server_fails_after_bounded_retries(population, ctx):
    client = PopulationClient(
        "http://127.0.0.1:9",
        population.store,
        base_id=ctx.served_model_name,
        max_loaded=2,
        retries=2,
        backoff=0.01,
    )
    with pytest.raises(ServerError, match="failed after 3 attempt"):
        run(client.chat(ctx.served_model_name, QUESTION))
    run(client.aclose())


def test_utilization_is_read_from_the_servers_own_metrics(server, population):
    sampler = UtilizationSampler([server.url], interval=0.1).start()

    async def ask(client: PopulationClient) -> list:
        return await asyncio.gather(
            *(client.chat("base", QUESTION, max_tokens=32) for _ in range(8))
        )

    replies = with_client(server, population, ask)
    used = sampler.stop()
    assert used is not None and used.samples >= 3
    assert used.busy_share > 0 and used.max_running >= 1
    assert used.tokens_per_s > 0 and sum(r.completion_tokens for r in replies) > 0


CAPITALS = (
    ("What is the capital of France?", "Answer: Paris"),
    ("What is the capital of Italy?", "Answer: Rome"),
    ("What is the capital of Spain?", "Answer: Madrid"),
    ("What is the capital of Germany?", "Answer: Berlin"),
)


def test_a_specialized_child_loads_and_answers(server, population, ctx):
    special = dataclasses.replace(ctx, mutation="specialize", specialize_steps=3)
    breeder = make_breeder(special, population)
    assert isinstance(breeder.mutation, Specialize)
    mutation = dataclasses.replace(breeder.mutation, niche="capitals", examples=CAPITALS)
    child = dataclasses.replace(breeder, mutation=mutation).breed(
        population.seed_ids, seed=1, generation=1
    )
    assert child.training is not None and child.training["steps"] == 3
    assert child.training["loss_after"] < child.training["loss_before"]

    async def ask(client: PopulationClient) -> ChatResult:
        return await client.chat(child.id, QUESTION, max_tokens=16)

    reply = with_client(server, population, ask)
    assert reply.expert_id == child.id and reply.completion_tokens > 0
    assert child.id in server_adapters(server.url)


def test_many_seeded_samples_at_once_leave_the_server_alive(server, population):
    # 32 seeded requests of ~400 prompt tokens each outgrow one step's token budget (2048
    # on the CPU build), so their prefills are chunked; vLLM's rewind of a chunked seeded
    # request's generator raised on CPU and killed the engine (population/seeded_sampling.py).
    # Each prompt differs from its first tokens on, so the prefix cache cannot shorten it.
    prompts = [
        [{"role": "user", "content": " ".join(f"{k * 97 + i} is before {k * 97 + i + 1}."
                                              for i in range(60)) + " What follows 5?"}]
        for k in range(32)
    ]  # fmt: skip

    async def burst(client: PopulationClient) -> list[ChatResult]:
        return await asyncio.gather(
            *(
                client.chat("base", p, max_tokens=8, temperature=0.8, seed=k)
                for k, p in enumerate(prompts)
            )
        )

    results = with_client(server, population, burst)
    assert len(results) == 32 and all(r.completion_tokens > 0 for r in results)
    log = server.log_path.read_text()
    assert "does not use offset" not in log
    after = with_client(server, population, lambda c: c.chat("base", QUESTION, max_tokens=8))
    assert after.completion_tokens > 0


def test_the_model_computes_on_every_core(server):
    # vLLM's CPU build keeps one core per engine out of the model's OpenMP threads by
    # default; with cpu_reserved_cores 0 (acdc's default) every core this process may use
    # runs the model (on 2 cores: 240 against 165 tokens/s at 64 requests).
    found = re.findall(r"core ids=\[([0-9, ]*)\]", server.log_path.read_text())
    assert found, "the server log names no OpenMP core binding"
    cores = [int(c) for c in found[-1].split(",")]
    assert sorted(cores) == sorted(os.sched_getaffinity(0))
