"""A child made by the specialize mutation on the SmolLM2 seed loads and answers in vLLM."""

import asyncio
import dataclasses

import httpx
import pytest

from acdc.context import Context
from acdc.population.bootstrap import Population, make_breeder
from acdc.population.client import open_client
from acdc.population.operators.specialize import Specialize
from acdc.population.server import PopulationServer

pytestmark = pytest.mark.integration
NICHE = (
    ("What is the capital of France?", "Answer: Paris"),
    ("What is the capital of Italy?", "Answer: Rome"),
    ("What is the capital of Spain?", "Answer: Madrid"),
    ("What is the capital of Germany?", "Answer: Berlin"),
)


def test_a_specialized_child_loads_and_answers(
    ctx: Context, population: Population, server: PopulationServer
) -> None:
    special = dataclasses.replace(ctx, mutation="specialize", specialize_steps=3)
    breeder = make_breeder(special, population)
    assert isinstance(breeder.mutation, Specialize)
    mutation = dataclasses.replace(breeder.mutation, niche="capitals", examples=NICHE)
    child = dataclasses.replace(breeder, mutation=mutation).breed(
        population.seed_ids, seed=1, generation=1
    )
    assert child.training is not None and child.training["steps"] == 3
    assert child.training["loss_after"] < child.training["loss_before"]

    async def ask() -> str:
        async with open_client(ctx, server.urls, population.store) as client:
            question = [{"role": "user", "content": "What is the capital of France?"}]
            reply = await client.chat(child.id, question, max_tokens=16)
            return str(reply.text)

    text = asyncio.run(ask())
    assert text.strip()
    models = httpx.get(f"{server.url}/v1/models", timeout=10).json()["data"]
    assert child.id in {m["id"] for m in models}
