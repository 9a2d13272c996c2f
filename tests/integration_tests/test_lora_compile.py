"""torch.compile kept with LoRA on the CPU build answers as the eager LoRA path does.

vLLM's CPU platform turns compilation off whenever LoRA is enabled; acdc's plugin keeps
it (``lora_compile``), its LoRA ops being opaque to the one trace vLLM makes. The trace
happens at start-up, before any adapter is loaded, so the same greedy answers from
adapters loaded afterwards, in one batch mixing them with the base model, show that
the compiled graph reads each step's adapters and weights rather than the warm-up's.
"""

import asyncio
import dataclasses

import pytest
import torch

from acdc.context import Context
from acdc.population.bootstrap import Population, make_breeder
from acdc.population.client import PopulationClient
from acdc.population.server import PopulationServer

pytestmark = pytest.mark.integration
QUESTIONS = ["What is the capital of France?", "Name three colours.", "Count to five."]


def greedy_answers(ctx: Context, population: Population, models: list[str]) -> list[str]:
    """Every (model, question) answered greedily, all requests in flight together."""

    async def ask() -> list[str]:
        client = PopulationClient(
            server.url, population.store, base_id=ctx.served_model_name, max_loaded=len(models)
        )
        try:
            for model in models[1:]:
                await client.ensure_loaded(model)
            jobs = [
                client.chat(m, [{"role": "user", "content": q}], max_tokens=24)
                for m in models
                for q in QUESTIONS
            ]
            return [r.text for r in await asyncio.gather(*jobs)]
        finally:
            await client.aclose()

    with PopulationServer(ctx, population.base_dir) as server:
        return asyncio.run(ask())


def test_compiled_lora_gives_the_eager_answers(ctx: Context, population: Population):
    breeder = make_breeder(ctx, population)
    mild = breeder.breed(population.seed_ids, seed=1, generation=1).id
    strong_ctx = dataclasses.replace(ctx, mutation_sigma=8.0, mutation_keep_rank=16)
    strong = make_breeder(strong_ctx, population).breed([mild], seed=2, generation=2).id
    models = [ctx.served_model_name, mild, strong]

    eager = greedy_answers(dataclasses.replace(ctx, lora_compile=False), population, models)
    compiled = greedy_answers(dataclasses.replace(ctx, lora_compile=True), population, models)

    assert compiled == eager
    count = len(QUESTIONS)
    assert eager[2 * count :] != eager[:count]  # the strong child's adapter really applies


SLICES = [32, 16, 16]


def layer(x: torch.Tensor, base: torch.Tensor, a, b, slots: torch.Tensor) -> torch.Tensor:
    """Linear and embedding-like LoRA as vLLM's CPU layers apply them: in place."""
    y = x @ base.T
    torch.ops.acdc.lora_linear(y, x, a, b, slots, 0.5, SLICES)
    torch.ops.acdc.lora_expand(y, torch.relu(y[:, :8]), base[:, :8].expand(4, 1, 64, 8), slots)
    return y * 2


def test_one_graph_traced_without_guards_serves_later_batches():
    """The ops compiled as vLLM's CPU build compiles: full graph, dynamic length, no guards."""
    torch._dynamo.reset()
    gen = torch.Generator().manual_seed(4)
    a = [torch.randn(4, 1, 8, 64, generator=gen) for _ in SLICES]
    b = [torch.randn(4, 1, size, 8, generator=gen) for size in SLICES]
    base = torch.randn(64, 64, generator=gen)
    slots = torch.zeros(64, dtype=torch.long)  # one buffer, rewritten in place each step
    compiled = torch.compile(
        layer,
        fullgraph=True,  # a graph break would fail here, as it fails vLLM's compilation
        backend="aot_eager",
        options={"guard_filter_fn": torch.compiler.skip_all_guards_unsafe},
    )
    for rows, indices in [(12, [0] * 12), (5, [1, 3, -1, 1, 2]), (9, [2, 2, 0, 0, 1, -1, 3, 3, 3])]:
        x = torch.randn(rows, 64, generator=gen)
        torch._dynamo.mark_dynamic(x, 0)
        slots[:rows] = torch.tensor(indices)
        assert torch.equal(compiled(x, base, a, b, slots), layer(x, base, a, b, slots))
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1
