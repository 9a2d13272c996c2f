"""The coevolution graph on a fake stack: control flow, evaluation accounting, DNS wiring.

Breeding, the run folder, ChromaDB with MiniLM, the graders and the checkpointer are
real; the role models and the population server's words are scripted (tests/fake_stack).
"""

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from acdc.agents.calibration import left_out
from acdc.context import Context
from acdc.graphs.coevolution import builder
from acdc.graphs.resources import close_all
from acdc.population import archive as dns
from acdc.runstore import EvaluationStore
from acdc.taskpool import TaskPool
from tests.fake_stack import FakePopulation, FakeRoles, fake_settings, seed_references
from tests.stub_openai import StubOpenAI


@pytest.fixture
def stack() -> Iterator[tuple[FakePopulation, FakeRoles]]:
    references = seed_references()
    with FakePopulation(references) as population, FakeRoles(references) as roles:
        yield population, roles
    close_all()


def fake_context(
    tmp_path: Path,
    tiny_base: Path,
    population: FakePopulation,
    roles: FakeRoles | StubOpenAI,
    **over: object,
) -> Context:
    settings = fake_settings(tmp_path / "runs", tiny_base, population, roles)
    settings |= {"run_id": "g", "task_rounds": 2, "adapt_every": 2, "adapt_parents": 2}
    settings |= {"request_retries": 0, **over}
    return Context(**settings)  # type: ignore[arg-type]


def test_two_generations_evaluate_each_triple_once_and_archive_by_dns(
    tmp_path: Path, tiny_base: Path, stack: tuple[FakePopulation, FakeRoles]
) -> None:
    population, roles = stack
    ctx = fake_context(tmp_path, tiny_base, population, roles)
    graph = builder.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "g"}, "recursion_limit": 200}
    steps = [
        node
        for chunk in graph.stream({}, config, context=ctx, stream_mode="updates")
        for node in chunk
    ]
    # Control flow: pool grown in micro-batches, two generations, adaptation at gen 2.
    assert steps[:2] == ["bootstrap", "seed_tasks"]
    gen = ["breed", "evaluate", "archive"]
    tail = steps[steps.index("breed") :]
    assert tail == [*gen, "report", *gen, "adapt_tasks", "reevaluate", "report"]
    state = graph.get_state(config).values
    assert state["generation"] == 2 and state["stop_reason"].startswith("generation budget")

    run = ctx.run_dir
    pool = TaskPool.open(run)
    assert len(pool.active) + len(pool.retired) > 10  # 10 seeds + accepted scientist tasks
    # Accounting: one record per (expert, task, instance) and one subject chat per record.
    store = EvaluationStore(run / "evaluations.jsonl")
    keys = [r.key for r in store.records()]
    assert len(keys) == len(set(keys))
    lines = (run / "evaluations.jsonl").read_text().splitlines()
    assert len(lines) == len(keys)
    chats = Counter(population.subject_chats())
    assert sum(chats.values()) == len(keys)
    assert max(chats.values()) == 1
    # Generation 2 evaluated only its children (and the survivors on new tasks), not the
    # whole archive again.
    evaluate = [
        json.loads(line)
        for line in (run / "metrics.jsonl").read_text().splitlines()
        if '"phase": "evaluate"' in line
    ]
    assert evaluate[1]["calls"] < evaluate[1]["naive_calls"]
    # DNS wiring: survivors are what select_survivors picks from the stored scores.
    saved = json.loads((run / "archive" / "gen-002.json").read_text())
    tasks = {t: [i.id for i in pool.get(t).instances] for t in saved["tasks"]}
    scores = store.mean_scores(saved["candidates"], tasks)
    skills = dns.skill_matrix(scores, saved["candidates"], list(tasks))
    known = dns.known_matrix(scores, saved["candidates"], list(tasks))
    expected = dns.select_survivors(
        saved["candidates"], skills, ctx.archive_size, "dns", ctx.dns_k, known
    )
    assert saved["survivors"] == expected.survivors
    assert len(saved["candidates"]) == 5 and len(saved["survivors"]) == 3
    fittest = saved["candidates"][int(np.argmax(dns.fitness(skills, known)))]
    assert saved["scores"][fittest] == 999.0 and fittest in saved["survivors"]
    # The run folder holds what the issue lists.
    for name in ("config.yaml", "summary.md", "pool.json", "metrics.jsonl", "report/report.html"):
        assert (run / name).is_file(), name
    assert (
        (run / "prompts" / "scientist_create.txt")
        .read_text()
        .startswith((Path("prompts") / "scientist_create.txt").read_text()[:40])
    )


def test_human_review_pauses_and_applies_the_decision(
    tmp_path: Path, tiny_base: Path, stack: tuple[FakePopulation, FakeRoles]
) -> None:
    population, roles = stack
    ctx = fake_context(
        tmp_path, tiny_base, population, roles, review_tasks=True, generations=1, task_rounds=1
    )
    graph = builder.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "r"}, "recursion_limit": 200}
    result = graph.invoke({}, config, context=ctx)
    (request,) = result["__interrupt__"]
    candidates = request.value["candidates"]
    assert len(candidates) == 2
    first, second = candidates[0]["id"], candidates[1]["id"]
    drafts_before = len(roles.requests)
    graph.invoke(
        Command(resume={"reject": [first], "edit": {second: {"name": "Edited by a person"}}}),
        config,
        context=ctx,
    )
    pool = TaskPool.open(ctx.run_dir)
    assert first not in pool.active and pool.rejected["reviewer"] == 1
    assert pool.get(second).name == "Edited by a person"
    # The resumed node used the saved candidates instead of asking the scientist again.
    drafts = [r for r in roles.requests[drafts_before:] if "TaskDraft" in json.dumps(r)]
    assert drafts == []
    assert graph.get_state(config).values["generation"] == 1


def test_garbage_from_the_role_models_is_recorded_and_the_generation_completes(
    tmp_path: Path, tiny_base: Path
) -> None:
    references = seed_references()
    with FakePopulation(references) as population, StubOpenAI([], default="no JSON here") as roles:
        ctx = fake_context(
            tmp_path,
            tiny_base,
            population,
            roles,
            generations=1,
            task_rounds=1,
            judge_retries=1,
            trust_judge=True,  # its calibration fails too: rubric tasks count by override
        )
        graph = builder.compile(checkpointer=InMemorySaver())
        config = {"configurable": {"thread_id": "bad"}, "recursion_limit": 200}
        state = graph.invoke({}, config, context=ctx)
        close_all()
    assert state["generation"] == 1 and state["stop_reason"].startswith("generation budget")
    phases = [
        json.loads(line)
        for line in (ctx.run_dir / "metrics.jsonl").read_text().splitlines()
        if '"phase": "seed_tasks"' in line
    ]
    assert phases[0]["rejected"] == {"scientist": 2}
    assert "malformed output" in phases[0]["rejection_examples"]["scientist"]
    store = EvaluationStore(ctx.run_dir / "evaluations.jsonl")
    rubric = [r for r in store.records() if r.grader == "rubric"]
    assert rubric and all(r.error.startswith("judge failed") and r.score == 0.0 for r in rubric)
    assert any(r.score == 1.0 for r in store.records())  # deterministic grading went on


def test_a_busy_server_leaves_triples_missing_for_the_next_pass_never_a_zero(
    tmp_path: Path, tiny_base: Path, stack: tuple[FakePopulation, FakeRoles]
) -> None:
    population, roles = stack
    population.busy = 5  # five 503s (after the client's own retries: request_retries=0)
    ctx = fake_context(tmp_path, tiny_base, population, roles, generations=1, task_rounds=1)
    graph = builder.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "busy"}, "recursion_limit": 200}
    graph.invoke({}, config, context=ctx)
    assert population.busy == 0
    store = EvaluationStore(ctx.run_dir / "evaluations.jsonl")
    assert store.records() and not [r for r in store.records() if r.error]
    chats = Counter(population.subject_chats())
    assert sum(chats.values()) == len(store)  # each triple answered once, after the 503s
    evaluate = [
        json.loads(line)
        for line in (ctx.run_dir / "metrics.jsonl").read_text().splitlines()
        if '"phase": "evaluate"' in line
    ]
    assert all(e["errors"] == 0 and e["left_missing"] == 0 for e in evaluate)


def test_an_uncalibrated_judge_keeps_rubric_tasks_out_of_evaluation_and_fitness(
    tmp_path: Path, tiny_base: Path, stack: tuple[FakePopulation, FakeRoles]
) -> None:
    population, roles = stack  # the fake judge passes everything: 50 % on the pairs
    ctx = fake_context(tmp_path, tiny_base, population, roles, generations=1, task_rounds=1)
    graph = builder.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "uncalibrated"}, "recursion_limit": 200}
    graph.invoke({}, config, context=ctx)
    run = ctx.run_dir
    calibration = json.loads((run / "judge_calibration.json").read_text())
    assert calibration["agreement"] == 0.5 and calibration["false_pass_rate"] == 1.0
    assert calibration["trusted"] is False
    pool = TaskPool.open(run)
    rubric = {t for t in pool.ever() if pool.get(t).grading == "rubric"}
    assert rubric  # the seed pool has rubric tasks
    store = EvaluationStore(run / "evaluations.jsonl")
    assert store.records() and not [r for r in store.records() if r.task_id in rubric]
    archive = json.loads((run / "archive" / "gen-001.json").read_text())
    assert archive["tasks"] and not rubric & set(archive["tasks"])
    assert (
        "judge calibration: agreement 50% on 40 labelled pairs" in (run / "summary.md").read_text()
    )
    assert "NOT trusted: rubric tasks off" in (run / "report" / "report.html").read_text()


def test_every_generation_record_carries_the_pool_and_the_global_figures(
    tmp_path: Path, tiny_base: Path, stack: tuple[FakePopulation, FakeRoles]
) -> None:
    population, roles = stack
    ctx = fake_context(tmp_path, tiny_base, population, roles)
    graph = builder.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "global"}, "recursion_limit": 200}
    graph.invoke({}, config, context=ctx)
    run = ctx.run_dir
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    records = [r for r in metrics if r.get("event") == "generation"]
    assert [r["generation"] for r in records] == [1, 2]
    for record in records:
        assert record["pool_target"] == ctx.pool_target
        assert isinstance(record["adaptation"], dict)
        for key in ("coverage", "best_fitness", "pool_pass_rate", "global_missing"):
            assert key in record
    completions = [r for r in metrics if r.get("phase") == "global_evaluate"]
    assert [r["generation"] for r in completions] == [1, 2]

    # The last record against the test's own reading of the run folder: the survivors
    # and the seed on every task ever active (rubric ones out: the fake judge is not
    # trusted), each of them evaluated first, every instance.
    pool = TaskPool.open(run)
    rubric_off = set(left_out(run))
    ever = [t for t in pool.ever() if t not in rubric_off]
    survivors = json.loads((run / "archive" / "gen-002.json").read_text())["survivors"]
    experts = [*survivors, ctx.served_model_name]
    store = EvaluationStore(run / "evaluations.jsonl")
    instances = {t: [i.id for i in pool.get(t).instances] for t in ever}
    scores = store.mean_scores(experts, instances)
    assert len(scores) == len(experts) * len(ever)  # completed: nothing left to mask
    passed = np.array([[scores[(e, t)] >= 0.5 for t in ever] for e in experts])
    ours, seed = passed[:-1], passed[-1]
    last = records[-1]
    assert last["pool_size"] == len(pool.active)
    assert last["global_tasks"] == len(ever) > 0
    assert last["global_missing"] == 0
    assert last["global_coverage"] == pytest.approx(passed.any(axis=0).mean(), abs=1e-4)
    assert last["global_best_fitness"] == pytest.approx(ours.mean(axis=1).max(), abs=1e-4)
    assert last["global_pass_rate"] == pytest.approx(ours.mean(axis=0).mean(), abs=1e-4)
    assert last["seed_global_fitness"] == pytest.approx(seed.mean(), abs=1e-4)
    # The printed summary leads with them; the active pool's figures come labelled.
    text = (run / "summary.md").read_text()
    assert f"archive {len(survivors)}; all {len(ever)} tasks ever active: coverage" in text
    assert f"active pool {len(pool.active)} tasks (target {ctx.pool_target})" in text
