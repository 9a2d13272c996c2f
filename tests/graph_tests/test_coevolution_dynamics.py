"""The loop coevolves: a scripted world run through the real graph for eight generations.

The world (tests/sim_stack.py) has experts with latent skills per capability, breeding
that moves skills, and a scientist whose harder variants raise a task's level. The test
reads the run folder the way a person would (archives, tasks, evaluations) and checks
the behaviour DESIGN.md section 4 aims for, not one step of it:
- harder variants get into the pool at nearly every adaptation (the world is random:
  a generation whose drawn parents all sit below harder_pass_rate rightly asks for none);
- the archive's pass rate on the pool stays inside the band the thresholds aim for
  instead of drifting to 0 or 1;
- the pool never empties;
- the archive covers more and more tasks that the seed cannot solve.
"""

import itertools
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langgraph.checkpoint.memory import InMemorySaver

from acdc.context import Context
from acdc.graphs.coevolution import builder
from acdc.graphs.resources import close_all
from acdc.runstore import EvaluationStore
from tests.sim_stack import (
    CAPABILITIES,
    SimScientist,
    SimWorld,
    write_seed_levels,
    write_seed_tasks,
)

GENERATIONS = 8


def run_world(
    world: SimWorld, run_dir: Path, tiny_base: Path, seeds: Path, **overrides: object
) -> tuple[Path, list[dict[str, Any]]]:
    """Run the real graph over ``world`` with scripted roles; the run folder and summaries."""
    with SimScientist() as roles:
        settings: dict[str, object] = {
            "runs_dir": str(run_dir),
            "run_id": "world",
            "base_model": str(tiny_base),
            "server_url": world.url.removesuffix("/v1"),
            "seed_tasks_dir": str(seeds),
            "lora_rank": 8,
            "mutation_keep_rank": 4,
            "sanity_check": False,
            "initial_population": 5,
            "children_per_generation": 4,
            "archive_size": 5,
            "generations": GENERATIONS,
            "initial_pool": 6,
            "task_batch": 3,
            "task_rounds": 2,
            "adapt_every": 1,
            "adapt_parents": 6,
            "pool_max": 16,
            "reflection_rounds": 0,
            "request_retries": 0,
            "random_seed": 7,
            **overrides,
        }
        for role in ("scientist", "judge", "curator"):
            settings[f"{role}_base_url"] = roles.url
            settings[f"{role}_model"] = "stub"
        ctx = Context(**settings)  # type: ignore[arg-type]
        graph = builder.compile(checkpointer=InMemorySaver())
        config = {"configurable": {"thread_id": "world"}, "recursion_limit": 800}
        summaries = [
            update["report"]["summary"]
            for update in graph.stream({}, config, context=ctx, stream_mode="updates")
            if "report" in update
        ]
    return ctx.run_dir, summaries


@pytest.fixture(scope="module")
def world_run(
    tmp_path_factory: pytest.TempPathFactory, tiny_base: Path
) -> Iterator[tuple[SimWorld, Path, list[dict[str, Any]]]]:
    """Run the world once for every assertion below; returns the run folder and summaries."""
    tmp = tmp_path_factory.mktemp("world")
    seeds = write_seed_tasks(tmp / "seeds", list(CAPABILITIES)[:3], level=1.0)
    with SimWorld() as world:
        run, summaries = run_world(world, tmp / "runs", tiny_base, seeds)
        yield world, run, summaries
    close_all()


def archives(run: Path, generations: int = GENERATIONS) -> list[dict[str, object]]:
    """The archive files of generations 1..``generations`` (what survived, on which tasks)."""
    found = [
        json.loads((run / "archive" / f"gen-{g:03d}.json").read_text())
        for g in range(1, generations + 1)
    ]
    assert len(found) == generations
    return found


def pool_pass_rate(run: Path, archive: dict[str, object]) -> float:
    """Mean over the archive's tasks of the share of survivors passing them (mean >= 0.5)."""
    store = EvaluationStore(run / "evaluations.jsonl", read_only=True)
    scores: dict[tuple[str, str], list[float]] = {}
    for record in store.records():
        scores.setdefault((record.expert_id, record.task_id), []).append(record.score)
    survivors = list(archive["survivors"])  # type: ignore[call-overload]
    tasks = list(archive["tasks"])  # type: ignore[call-overload]
    rates = [np.mean([np.mean(scores.get((e, t), [0.0])) >= 0.5 for e in survivors]) for t in tasks]
    return float(np.mean(rates))


def test_harder_variants_are_admitted_at_nearly_every_adaptation(world_run) -> None:
    _, run, _ = world_run
    admitted = Counter(
        task["generation"]
        for task in (json.loads(p.read_text()) for p in (run / "tasks").glob("*.json"))
        if task["adaptation"] == "harder"
    )
    # The pre-issue loop admitted no harder variant at all in this world.
    assert sum(admitted[g] >= 1 for g in range(1, GENERATIONS + 1)) >= GENERATIONS - 2, admitted
    assert sum(admitted.values()) >= GENERATIONS, admitted


def test_the_pool_pass_rate_stays_inside_the_band(world_run) -> None:
    _, run, _ = world_run
    rates = [pool_pass_rate(run, archive) for archive in archives(run)]
    # From the third generation on (adaptation has acted twice) the pool keeps
    # separating experts: no generation solved by all or by none, and on average near
    # the harder_pass_rate (0.5) the adaptation aims at. (The pre-issue loop, whose
    # variants never got in, sat at 0.62-0.70 in this world.)
    assert all(0.1 <= rate <= 0.85 for rate in rates[2:]), rates
    assert 0.25 <= float(np.mean(rates[2:])) <= 0.6, rates


def test_the_pool_never_empties(world_run) -> None:
    _, run, summaries = world_run
    assert len(summaries) == GENERATIONS
    assert all(len(archive["tasks"]) >= 3 for archive in archives(run))  # type: ignore[arg-type]
    assert all(int(s["pool_size"]) >= 3 for s in summaries), [s["pool_size"] for s in summaries]


def task_passed(world: SimWorld, expert: str, questions: list[str]) -> bool:
    """The world's own rule for a task: at least half its instances answered right."""
    return float(np.mean([world.passes(expert, q) for q in questions])) >= 0.5


def beyond_the_seed(world: SimWorld, run: Path, archive: dict[str, Any]) -> int:
    """Tasks of the archive's pool that some survivor passes and the seed fails.

    Read from the world's own rule (skill plus fixed luck against the task's level), not
    from the run's records, so the count does not depend on the code under test.
    """
    count = 0
    for task_id in archive["tasks"]:
        task = json.loads((run / "tasks" / f"{task_id}.json").read_text())
        questions = [i["instruction"] for i in task["instances"]]
        ours = any(task_passed(world, e, questions) for e in archive["survivors"])
        count += int(ours and not task_passed(world, "base", questions))
    return count


def test_the_archive_covers_more_of_what_the_seed_cannot_over_time(world_run) -> None:
    world, run, _ = world_run
    counts = [beyond_the_seed(world, run, archive) for archive in archives(run)]
    # Growth, not a comparison with the old loop (which grew too, 4 -> 6, in this
    # world): the harder-variant and pass-rate-band tests above tell the two apart.
    assert np.mean(counts[-3:]) >= np.mean(counts[:2]) + 2, counts


def test_the_summary_reports_the_dynamics(world_run) -> None:
    _, run, summaries = world_run
    last = summaries[-1]
    assert 0.0 < float(last["pool_pass_rate"]) < 1.0  # type: ignore[arg-type]
    harder = [s["adaptation"].get("harder", {}).get("admitted", 0) for s in summaries]  # type: ignore[attr-defined]
    assert sum(harder) >= GENERATIONS, harder
    # Parents leave as their variants come in, and that shows as a cause of retirement.
    assert sum(s["retired"].get("replaced", 0) for s in summaries) >= GENERATIONS  # type: ignore[attr-defined]
    assert float(last["archive_best_fitness"]) >= float(last["seed_fitness"])  # type: ignore[arg-type]
    assert int(last["discoveries"]) >= 1  # type: ignore[call-overload]
    assert 0.0 < float(last["pool_novelty"]) <= 2.0  # type: ignore[arg-type]
    # The logged figure against the test's own reading of the run folder: the last
    # archive's survivors on the pool as the run left it (after the last adaptation).
    final = {
        "survivors": archives(run)[-1]["survivors"],
        "tasks": json.loads((run / "pool.json").read_text())["active"],
    }
    assert float(last["pool_pass_rate"]) == pytest.approx(pool_pass_rate(run, final), abs=1e-3)


# The weak regime the defaults really run in: a seed that passes almost nothing (the
# bundled 135M seed passed 0 of 11 tasks), children that improve slowly. Here the seed
# passes one of 15 seed tasks; the other 14 are a level or more above every skill.
WEAK_GENERATIONS = 10
WEAK_TARGET = 12


@pytest.fixture(scope="module")
def weak_run(
    tmp_path_factory: pytest.TempPathFactory, tiny_base: Path
) -> Iterator[tuple[SimWorld, Path, list[dict[str, Any]]]]:
    tmp = tmp_path_factory.mktemp("weak")
    hard = [(c, level) for c in list(CAPABILITIES)[1:] for level in (2.2, 2.6)]
    seeds = write_seed_levels(tmp / "seeds", [("arithmetic", 0.9), *hard])
    with SimWorld(skill_noise=0.2) as world:
        run, summaries = run_world(
            world,
            tmp / "runs",
            tiny_base,
            seeds,
            generations=WEAK_GENERATIONS,
            initial_pool=WEAK_TARGET,
            pool_max=20,
            initial_population=4,
            children_per_generation=3,
            archive_size=4,
            adapt_parents=4,
            adapt_budget=24,
        )
        yield world, run, summaries
    close_all()


def generation_records(run: Path) -> list[dict[str, Any]]:
    """The ``generation`` records of the run's metrics log, as a reader of the file sees them."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("event") == "generation"]


def test_the_weak_world_is_weak(weak_run) -> None:
    world, run, _ = weak_run
    seeds = [json.loads(p.read_text()) for p in (run / "tasks").glob("seed-*.json")]
    passed = [
        task_passed(world, "base", [i["instruction"] for i in task["instances"]]) for task in seeds
    ]
    assert len(seeds) == 15 and 0.05 <= float(np.mean(passed)) <= 0.1, passed


def test_the_pool_is_refilled_after_every_adaptation_in_the_weak_regime(weak_run) -> None:
    _, run, _ = weak_run
    records = generation_records(run)
    assert len(records) == WEAK_GENERATIONS  # adapt_every 1: each record follows an adaptation
    sizes = [r["pool_size"] for r in records]
    # The pre-refill loop retired the 14 impossible seed tasks at the first adaptation
    # and never grew back (pools of 1-4 against a target of 12).
    assert all(r["pool_target"] == WEAK_TARGET for r in records)
    assert all(size >= 0.8 * WEAK_TARGET for size in sizes), sizes


def test_harder_and_easier_variants_both_get_in_in_the_weak_regime(weak_run) -> None:
    _, run, _ = weak_run
    admitted = Counter(
        json.loads(p.read_text())["adaptation"] for p in (run / "tasks").glob("*.json")
    )
    assert admitted["easier"] >= 3 and admitted["harder"] >= 1, admitted
    logged: Counter[str] = Counter()
    for record in generation_records(run):
        for kind, counts in record["adaptation"].items():
            logged[kind] += counts["admitted"]
    assert logged["easier"] == admitted["easier"] and logged["harder"] == admitted["harder"]


def test_global_coverage_grows_in_the_weak_regime(weak_run) -> None:
    _, run, _ = weak_run
    records = generation_records(run)
    covered = [round(r["global_coverage"] * r["global_tasks"]) for r in records]
    # Tasks ever active that an archive member or the seed passes. The share itself may
    # dip while harder variants join the denominator faster than they are solved (the
    # curriculum at work), and DNS ranks on the active pool, so it may drop the one
    # member passing a retired task: at most one such task a generation here.
    assert all(b >= a - 1 for a, b in itertools.pairwise(covered)), covered
    assert covered[-1] >= covered[0] + 10, covered
    assert records[-1]["global_coverage"] > records[0]["global_coverage"]
    # Every task ever active stays in the denominator: retired ones included.
    ever = len(list((run / "tasks").glob("*.json")))
    assert records[-1]["global_tasks"] == ever > records[-1]["pool_size"]
