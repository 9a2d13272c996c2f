"""Global and active-pool figures of a generation, on a run folder built by hand.

The run's resources are the real run folder, pool and evaluation store; only the parts a
figure never touches (server, vector store, role models) are absent. Before issue 19 a
cell never evaluated read as a fail, and nothing measured the archive on retired tasks:
the active pool's coverage rose whenever the pool shed the tasks nobody passed.
"""

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from acdc.context import Context
from acdc.graphs import diversity, dynamics, global_scores, phases, skill_matrix, summary
from acdc.population.coverage import coverage
from acdc.rundir import RunDir
from acdc.runstore import EvalRecord
from acdc.taskpool import TaskPool
from acdc.tasks import Task

SEED = "base"


def make_task(task_id: str) -> Task:
    return Task.model_validate(
        {
            "id": task_id,
            "name": f"task {task_id}",
            "description": f"Task {task_id}.",
            "capability": "arithmetic",
            "subject": "math",
            "difficulty": 1,
            "grading": "exact",
            "instances": [
                {"id": f"i{k}", "instruction": f"{task_id} {k}?", "reference": "1"}
                for k in (1, 2, 3)
            ],
        }
    )


def constructed(tmp_path: Path, passes: dict[str, dict[str, bool]], **over: Any) -> Any:
    """A run whose pool holds t1..t4 and whose store holds ``passes[expert][task]``.

    A task missing from an expert's dict was never evaluated for it.
    """
    ctx = Context(runs_dir=str(tmp_path), run_id="c", **over)  # type: ignore[arg-type]
    run = RunDir(ctx.run_dir)
    pool = TaskPool.open(run.root)
    for task_id in ("t1", "t2", "t3", "t4"):
        pool.admit(make_task(task_id))
    store = run.evaluations()
    for expert, tasks in passes.items():
        for task_id, passed in tasks.items():
            for k in (1, 2, 3):
                store.add(
                    EvalRecord(
                        expert_id=expert,
                        task_id=task_id,
                        instance_id=f"i{k}",
                        score=1.0 if passed else 0.0,
                    )
                )
    return SimpleNamespace(ctx=ctx, run=run, pool=pool, population=SimpleNamespace(seed_ids=[SEED]))


ALL = ("t1", "t2", "t3", "t4")


def row(passed: set[str], evaluated: tuple[str, ...] = ALL) -> dict[str, bool]:
    return {t: t in passed for t in evaluated}


def active_coverage(res: Any, archive: list[str]) -> float:
    """The summary's ``coverage``: the archive on the active pool, masked."""
    _, solved, known = skill_matrix.skills(res, archive)
    return coverage(solved, range(len(archive)), known)


def test_a_retired_task_stays_in_the_global_denominator(tmp_path: Path) -> None:
    res = constructed(
        tmp_path,
        {"a1": row({"t1"}), "a2": row({"t2"}), SEED: row(set())},
    )
    before = global_scores.global_figures(res, ["a1", "a2"])
    assert before == {
        "global_tasks": 4,
        "global_coverage": 0.5,
        "global_best_fitness": 0.25,
        "global_pass_rate": 0.25,  # t1 1/2, t2 1/2, t3 0, t4 0
        "seed_global_fitness": 0.0,
        "global_missing": 0,
    }
    assert active_coverage(res, ["a1", "a2"]) == 0.5
    # Adaptation retires t3 and t4: nobody passes them. Nobody learned anything.
    res.pool.retire("t3", "impossible")
    res.pool.retire("t4", "impossible")
    assert active_coverage(res, ["a1", "a2"]) == 1.0  # the active figure doubles...
    after = global_scores.global_figures(res, ["a1", "a2"])
    assert after == before  # ...the global one does not move


def test_a_cell_never_evaluated_is_masked_in_the_global_figures(tmp_path: Path) -> None:
    # a3 joined the archive after t3 and t4 were retired and was never asked them.
    res = constructed(
        tmp_path,
        {"a1": row({"t1"}), "a3": row({"t1", "t2"}, ("t1", "t2")), SEED: row({"t1"})},
    )
    res.pool.retire("t3", "impossible")
    res.pool.retire("t4", "impossible")
    figures = global_scores.global_figures(res, ["a1", "a3"])
    assert figures["global_best_fitness"] == 1.0  # 2 of its 2 evaluated tasks, not 2 of 4
    assert figures["global_missing"] == 2
    assert figures["global_coverage"] == 0.5  # t1, t2 of the four, t3 and t4 failed by a1
    assert figures["global_pass_rate"] == pytest.approx((1.0 + 0.5 + 0.0 + 0.0) / 4)
    assert figures["seed_global_fitness"] == 0.25


def test_the_archive_keeps_an_expert_that_passes_every_task_it_was_evaluated_on(
    tmp_path: Path,
) -> None:
    # "q" passes t1, t2 of all four; "p" passes t1, t2 and was evaluated on nothing else;
    # "r" is the only one passing t3. Read as fails, p's two holes made it q's equal, and
    # q (first) left p a novelty of 0: p was dropped.
    res = constructed(
        tmp_path,
        {"q": row({"t1", "t2"}), "p": row({"t1", "t2"}, ("t1", "t2")), "r": row({"t3"})},
        archive_size=2,
    )
    survivors = phases.select_archive(res, ["q", "p", "r"], generation=1)
    assert survivors == ["p", "r"]
    saved = json.loads((res.run.root / "archive" / "gen-001.json").read_text())
    assert saved["fitness"] == {"q": 0.5, "p": 1.0, "r": 0.25}


def test_dynamics_do_not_count_an_unevaluated_seed_cell_as_a_discovery(tmp_path: Path) -> None:
    # The seed was never asked t2: that a2 passes it discovers nothing yet.
    res = constructed(
        tmp_path,
        {"a1": row({"t1"}), "a2": row({"t2"}), SEED: row(set(), ("t1", "t3", "t4"))},
    )
    res.index = SimpleNamespace(embeddings=lambda ids: [])
    figures = dynamics.dynamics(res, ["a1", "a2"], generation=1)
    assert figures["discoveries"] == 1
    assert figures["seed_fitness"] == 0.0


SUMMARY: dict[str, Any] = {
    "generation": 3,
    "archive_size": 2,
    "global_tasks": 40,
    "global_coverage": 0.125,
    "global_best_fitness": 0.1,
    "global_pass_rate": 0.05,
    "seed_global_fitness": 0.025,
    "global_missing": 0,
    "best_expert": None,
    "best_fitness": 0.0,
    "pool_size": 0,
    "pool_target": 12,
    "coverage": 0.0,
    "tasks_accepted": 0,
    "tasks_rejected": {},
    "tokens_by_role": {},
    "seconds_by_phase": {},
    "tokens_total": 10,
    "disagreement": 0.0,
    "coverage_gains": [0.17],
}


def test_the_printed_summary_leads_with_the_global_figures() -> None:
    first, second = summary.summary_text(SUMMARY).splitlines()[:2]
    assert first == (
        "== generation 3: archive 2; all 40 tasks ever active: coverage 12%, "
        "best fitness 0.100 vs seed 0.025, pass rate 0.05"
    )
    assert second == "   active pool 0 tasks (target 12): empty"


@pytest.mark.parametrize(
    ("pool_size", "active", "expected"),
    [
        (0, 0.0, "none (the active pool is empty)"),
        (5, 0.0, "none (no active task is passed)"),
        (5, 0.4, "+17%"),
    ],
)
def test_no_force_gain_is_shown_on_an_empty_or_unpassed_pool(
    pool_size: int, active: float, expected: str
) -> None:
    line = diversity.diversity_line({**SUMMARY, "pool_size": pool_size, "coverage": active})
    assert line.endswith(f"greedy task force gains {expected}")
