"""The adaptation rules one by one: draw, replacement, restoration, caps from generation 0."""

import json
import random
from collections import Counter
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from acdc.agents.curator import draw_parents, impossible_tasks
from acdc.agents.task_pipeline import adaptation_kind
from acdc.context import Context
from acdc.graphs.coevolution import builder
from acdc.graphs.resources import close_all
from acdc.taskpool import TaskPool
from acdc.tasks import Task, load_tasks, seed_tasks_dir
from tests.fake_stack import FakePopulation, FakeRoles, fake_settings, seed_references

SEEDS = load_tasks(seed_tasks_dir())


def test_parents_are_drawn_only_among_tasks_someone_passes():
    a, b, c, d = SEEDS[:4]
    rates = {a.id: 0.0, b.id: 0.25, c.id: 0.9}  # d has no evaluation yet
    drawn = draw_parents([a, b, c, d], rates, 200, random.Random(1))
    assert len(drawn) == 200 and {t.id for t in drawn} == {b.id, c.id}
    rng = random.Random(5)
    kinds = Counter(adaptation_kind(rates[t.id], 0.5, 0.8, rng) for t in drawn)
    assert set(kinds) == {"novel_related", "novel_unrelated", "harder"}


def test_easier_only_when_no_task_is_passed_and_unevaluated_tasks_are_never_drawn():
    a, b, c = SEEDS[:3]
    drawn = draw_parents([a, b, c], {a.id: 0.0, b.id: 0.0}, 50, random.Random(2))
    assert {t.id for t in drawn} == {a.id, b.id}
    assert {adaptation_kind(0.0, 0.5, 0.8, random.Random(6))} == {"easier"}
    assert draw_parents([c], {}, 5, random.Random(3)) == []


def test_a_population_that_passes_nothing_keeps_its_pool_and_asks_for_easier_variants():
    # The 135M seed passes none of the evaluated tasks; one new task is not evaluated
    # yet. Retire-then-draw must not leave that one task alone with nothing to adapt
    # (what the old rule did: 10 of 11 tasks retired, no parent drawn, pool of 1).
    a, b, c = SEEDS[:3]
    rates = {a.id: 0.0, b.id: 0.0}
    retired = impossible_tasks([a, b, c], rates)
    assert retired == []
    left = [t for t in (a, b, c) if t.id not in retired]
    drawn = draw_parents(left, rates, 20, random.Random(4))
    assert len(drawn) == 20 and {t.id for t in drawn} == {a.id, b.id}
    rng = random.Random(7)
    assert {adaptation_kind(rates[t.id], 0.5, 0.8, rng) for t in drawn} == {"easier"}


def variant_of(parent: Task, new_id: str, kind: str = "harder") -> Task:
    return parent.model_copy(update={"id": new_id, "parent_id": parent.id, "adaptation": kind})


def test_a_variant_replaces_its_parent_which_returns_when_the_variant_is_impossible(
    tmp_path: Path,
):
    pool = TaskPool.open(tmp_path)
    parent, other = SEEDS[0], SEEDS[1]
    pool.admit(parent)
    pool.admit(other)
    harder = variant_of(parent, "harder-1")
    pool.replace(parent.id, harder)
    assert pool.active == [other.id, harder.id]
    assert pool.retired[parent.id].startswith("replaced")
    assert pool.lineage(harder) == [parent]
    # Reopened from disk (a resumed run), the variant proves impossible: the parent returns.
    pool = TaskPool.open(tmp_path)
    assert pool.retire_impossible(harder.id, "impossible") == parent.id
    assert set(pool.active) == {other.id, parent.id} and harder.id in pool.retired
    # A task that replaced nothing gives nothing back.
    assert pool.retire_impossible(other.id, "impossible") is None


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
