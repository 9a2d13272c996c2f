"""The pool cap and the archive size hold from generation 0, in a run on the fake stack."""

import json
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from acdc.context import Context
from acdc.graphs.coevolution import builder
from acdc.graphs.resources import close_all
from acdc.taskpool import TaskPool
from tests.fake_stack import FakePopulation, FakeRoles, fake_settings, seed_references


@pytest.fixture
def stack():
    references = seed_references()
    with FakePopulation(references) as population, FakeRoles(references) as roles:
        yield population, roles
    close_all()


def test_the_pool_cap_and_the_archive_size_hold_from_generation_zero(
    tmp_path: Path, tiny_base: Path, stack: tuple[FakePopulation, FakeRoles]
) -> None:
    population, roles = stack
    settings = fake_settings(tmp_path / "runs", tiny_base, population, roles)
    # Fourteen seed tasks against a cap of six; four children plus the seed against three.
    settings |= {"run_id": "caps", "generations": 1, "initial_pool": 12, "pool_max": 6}
    settings |= {"initial_population": 4, "archive_size": 3, "request_retries": 0}
    ctx = Context(**settings)  # type: ignore[arg-type]
    graph = builder.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "caps"}, "recursion_limit": 200}
    pool_sizes = [
        len(json.loads((ctx.run_dir / "pool.json").read_text())["active"])
        for update in graph.stream({}, config, context=ctx, stream_mode="updates")
        if "initial_archive" in update or "report" in update
    ]
    assert len(pool_sizes) == 2 and max(pool_sizes) <= 6  # before generation 1, and after
    first = json.loads((ctx.run_dir / "archive" / "gen-000.json").read_text())
    assert len(first["candidates"]) == 5 and len(first["survivors"]) == 3
    bred = [
        json.loads(line)
        for line in (ctx.run_dir / "metrics.jsonl").read_text().splitlines()
        if '"phase": "breed"' in line and '"generation": 1' in line
    ]
    parents = {
        p
        for child in bred[0]["bred"]
        for p in json.loads((ctx.run_dir / "experts" / child / "expert.json").read_text())[
            "parents"
        ]
    }
    assert parents <= set(first["survivors"])
    assert graph.get_state(config).values["generation"] == 1
    retired = TaskPool.open(ctx.run_dir).retired
    assert any(reason.startswith("cap:") for reason in retired.values())
