"""The adaptation rules one by one: draw, replacement, restoration.

The caps from generation 0, in a run: tests/graph_tests/test_pool_caps.py.
"""

import random
from collections import Counter
from pathlib import Path

from acdc.agents.curator import draw_parents, impossible_tasks
from acdc.agents.task_pipeline import adaptation_kind
from acdc.taskpool import TaskPool
from acdc.tasks import Task, load_tasks, seed_tasks_dir

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
