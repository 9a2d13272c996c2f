"""The curator's gates on real ChromaDB and MiniLM; the novelty check's words are scripted."""

import asyncio
import json
from pathlib import Path

import pytest

from acdc.agents.curator import Curator, plan_retirements
from acdc.agents.structured import caller_for
from acdc.context import Context
from acdc.tasks import Task, load_tasks, seed_tasks_dir
from acdc.vectorstore.contamination import BenchmarkIndex
from acdc.vectorstore.tasks import TaskIndex
from tests.stub_openai import StubOpenAI

SEEDS = load_tasks(seed_tasks_dir())


def variant(task: Task, **changes: object) -> Task:
    return task.model_copy(update=changes)


@pytest.fixture
def index(tmp_path: Path) -> TaskIndex:
    made = TaskIndex(tmp_path / "chroma")
    for task in SEEDS:
        made.upsert(task)
    return made


def curator(
    stub: StubOpenAI, index: TaskIndex, benchmarks: BenchmarkIndex | None = None
) -> Curator:
    ctx = Context(curator_base_url=stub.url, curator_retries=0)
    return Curator(
        caller_for(ctx, "curator", stub.url),
        index,
        novelty_threshold=0.7,
        neighbours=3,
        benchmarks=benchmarks,
        contamination_threshold=0.9,
    )


def test_a_paraphrase_is_rejected_as_duplicate_without_asking_the_model(index: TaskIndex):
    original = SEEDS[0]
    copy = variant(original, id="copy-1", description=original.description + " ")
    with StubOpenAI([]) as stub:
        decision = asyncio.run(curator(stub, index).admit(copy))
        calls = len(stub.requests)
    assert not decision.accepted and decision.gate == "duplicate"
    assert decision.neighbours[0][0] == original.id and decision.neighbours[0][1] > 0.7
    assert calls == 0 and index.get("copy-1") is None


def test_a_new_task_goes_to_the_model_which_decides(index: TaskIndex):
    birds = variant(
        SEEDS[0],
        id="birds-1",
        name="Bird migration",
        capability="ornithology",
        description="Name which bird species migrate farthest each year.",
    )
    no = json.dumps({"reasoning": "Same as the knowledge task.", "interestingly_new": False})
    yes = json.dumps(
        {"reasoning": "Tests ornithology, which nothing covers.", "interestingly_new": True}
    )
    with StubOpenAI([no, yes]) as stub:
        refused = asyncio.run(curator(stub, index).admit(birds))
        accepted = asyncio.run(curator(stub, index).admit(birds))
        prompt = stub.prompts()[0]
    assert not refused.accepted and refused.gate == "interestingly_new"
    assert refused.reason == "Same as the knowledge task."
    assert accepted.accepted and "ornithology" in accepted.reason
    assert index.get("birds-1") is not None and len(accepted.neighbours) == 3
    assert "<candidate>" in prompt and prompt.count("<task>") == 3


def test_a_failed_novelty_check_rejects_with_its_reason(index: TaskIndex):
    odd = variant(SEEDS[0], id="odd-1", description="Compose a limerick about tax law.")
    with StubOpenAI(["nonsense"]) as stub:
        decision = asyncio.run(curator(stub, index).admit(odd))
    assert not decision.accepted and decision.reason.startswith("check failed: malformed")


def test_a_task_close_to_a_benchmark_question_is_contaminated(index: TaskIndex, tmp_path: Path):
    bench_file = tmp_path / "bench.jsonl"
    target = SEEDS[1]
    bench_file.write_text(json.dumps({"question": target.instances[0].instruction}) + "\n")
    benchmarks = BenchmarkIndex(tmp_path / "bench-chroma")
    benchmarks.add_jsonl(bench_file)
    leaked = variant(target, id="leak-1", description=target.instances[0].instruction)
    leaked = variant(leaked, instances=[target.instances[0]] * 1 + list(target.instances[1:]))
    with StubOpenAI([]) as stub:
        decision = asyncio.run(curator(stub, index, benchmarks).admit(leaked))
    assert not decision.accepted and decision.gate == "contamination"


def test_retirement_plan_drops_unsolvable_trivial_and_oldest_over_cap():
    a, b, c, d = (variant(SEEDS[i], generation=g) for i, g in ((0, 0), (1, 1), (2, 2), (3, 3)))
    rates = {a.id: 0.0, b.id: 0.5, c.id: 1.0}  # d not evaluated yet: kept
    plan = plan_retirements([a, b, c, d], rates, pool_max=1)
    assert [(r.task_id, r.reason.split(" ")[0]) for r in plan] == [
        (a.id, "solved"),
        (c.id, "solved"),
        (b.id, "oldest"),
    ]
    assert "no expert" in plan[0].reason and "every expert" in plan[1].reason
