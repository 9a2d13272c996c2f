"""The curator's gates on real ChromaDB and MiniLM; the novelty check's words are scripted."""

import asyncio
import json
from pathlib import Path

import pytest

from acdc.agents.curator import Curator, impossible_tasks, over_cap
from acdc.agents.structured import caller_for
from acdc.context import Context
from acdc.tasks import Task, load_tasks, seed_tasks_dir
from acdc.vectorstore.contamination import BenchmarkIndex
from acdc.vectorstore.tasks import TaskIndex
from tests.stub_openai import StubOpenAI

SEEDS = load_tasks(seed_tasks_dir())


def variant(task: Task, **changes: object) -> Task:
    return task.model_copy(update=changes)


def harder(task: Task, new_id: str) -> Task:
    """A harder variant: the same task with one more constraint in every instruction."""
    instances = [
        i.model_copy(update={"instruction": i.instruction + " Show your work in one line."})
        for i in task.instances
    ]
    return variant(
        task,
        id=new_id,
        instances=instances,
        parent_id=task.id,
        adaptation="harder",
        difficulty=min(5, task.difficulty + 1),
    )


@pytest.fixture
def index(seed_index: Path) -> TaskIndex:
    return TaskIndex(seed_index)


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


def similar_task(new_id: str) -> Task:
    """A new task close to the code-tracing seed (cosine about 0.8), not a copy of it."""
    code = "d = {'a': [1]}\ne = dict(d)\ne['a'].append(2)\nprint(sum(d['a']) * 3)"
    first = (
        SEEDS[0]
        .instances[0]
        .model_copy(
            update={"instruction": f"What does this Python code print?\n\n```python\n{code}\n```"}
        )
    )
    return variant(
        SEEDS[0],
        id=new_id,
        description="Predict the output of short Python programs mixing aliasing and copies.",
        instances=[first, *SEEDS[0].instances[1:]],
    )


def test_a_similar_new_task_goes_to_the_model_which_decides(index: TaskIndex):
    close = similar_task("close-1")
    similar = [n for n in index.nearest_to_task(close, 3) if n.similarity >= 0.7]
    assert similar and similar[0].similarity < 0.95
    no = json.dumps({"reasoning": "Same as the knowledge task.", "interestingly_new": False})
    yes = json.dumps(
        {"reasoning": "Adds a working step to each answer.", "interestingly_new": True}
    )
    with StubOpenAI([no, yes]) as stub:
        refused = asyncio.run(curator(stub, index).admit(close))
        accepted = asyncio.run(curator(stub, index).admit(close))
        prompt = stub.prompts()[0]
    assert not refused.accepted and refused.gate == "interestingly_new"
    assert refused.reason == "Same as the knowledge task."
    assert accepted.accepted and "working step" in accepted.reason
    assert index.get("close-1") is not None and len(accepted.neighbours) == 3
    assert "<candidate>" in prompt and prompt.count("<task>") == len(similar)


def test_a_failed_novelty_check_rejects_with_its_reason(index: TaskIndex):
    odd = similar_task("odd-1")
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


def test_impossible_tasks_skip_unevaluated_ones_and_never_empty_the_pool():
    a, b, c = SEEDS[:3]
    rates = {a.id: 0.0, b.id: 0.5}  # c not evaluated yet
    assert impossible_tasks([a, b, c], rates) == [a.id]
    assert impossible_tasks([a, b], {a.id: 0.0, b.id: 0.0}) == []  # all impossible: keep all
    # No evaluated task is passed: a task not evaluated yet does not make the others
    # impossible (the old rule kept only c, and drew no parent at all).
    assert impossible_tasks([a, b, c], {a.id: 0.0, b.id: 0.0}) == []


def test_the_cap_retires_the_oldest_first():
    a, b, c = (variant(SEEDS[i], generation=g) for i, g in ((0, 2), (1, 0), (2, 1)))
    plan = over_cap([a, b, c], pool_max=1)
    assert [r.task_id for r in plan] == [b.id, c.id]
    assert all(r.reason.startswith("cap:") for r in plan)
    assert over_cap([a, b, c], pool_max=3) == []


def test_a_variant_is_not_compared_with_its_own_lineage(index: TaskIndex):
    parent = SEEDS[0]
    child = harder(parent, "harder-1")
    with StubOpenAI([]) as stub:
        as_new = asyncio.run(curator(stub, index).admit(child))
        as_variant = asyncio.run(curator(stub, index).admit(child, lineage=[parent], variant=True))
        calls = len(stub.requests)
    # Judged like a new task, the variant is a near-identical copy of its parent.
    assert not as_new.accepted and as_new.gate == "duplicate" and parent.id in as_new.reason
    # As a variant, its lineage is left out: no duplicate refusal, no novelty question.
    assert as_variant.accepted, as_variant.reason
    assert parent.id not in [t for t, _ in as_variant.neighbours]
    assert calls == 0 and index.get("harder-1") is not None


def test_a_variant_of_a_variant_skips_the_grandparent_too(index: TaskIndex):
    parent = SEEDS[0]
    first = harder(parent, "harder-1")
    index.upsert(first)
    second = harder(first, "harder-2")
    with StubOpenAI([]) as stub:
        decision = asyncio.run(
            curator(stub, index).admit(second, lineage=[first, parent], variant=True)
        )
    assert decision.accepted, decision.reason


def test_an_exact_copy_of_the_parent_is_refused_even_as_a_variant(index: TaskIndex):
    parent = SEEDS[0]
    copy = variant(parent, id="copy-2", parent_id=parent.id, adaptation="harder")
    with StubOpenAI([]) as stub:
        decision = asyncio.run(curator(stub, index).admit(copy, lineage=[parent], variant=True))
    assert not decision.accepted and decision.gate == "duplicate"
    assert decision.reason == f"an exact copy of {parent.id}"


def test_a_variant_near_identical_to_a_task_outside_its_lineage_is_refused(index: TaskIndex):
    other, parent = SEEDS[0], SEEDS[1]
    clone_of_other = variant(other, id="clone-1", parent_id=parent.id, adaptation="harder")
    with StubOpenAI([]) as stub:
        decision = asyncio.run(
            curator(stub, index).admit(clone_of_other, lineage=[parent], variant=True)
        )
    assert not decision.accepted and decision.gate == "duplicate" and other.id in decision.reason


def test_only_near_identical_text_is_a_duplicate_below_it_the_model_decides(index: TaskIndex):
    close = similar_task("close-1")
    near = index.nearest_to_task(close, 1)[0]
    assert 0.7 < near.similarity < 0.999  # similar, not identical
    yes = json.dumps({"reasoning": "adds a working step", "interestingly_new": True})
    for threshold, gate in ((near.similarity - 0.01, "duplicate"), (0.999, "accepted")):
        ctx = Context(curator_retries=0)
        with StubOpenAI([yes]) as stub:
            decision = asyncio.run(
                Curator(
                    caller_for(ctx, "curator", stub.url),
                    index,
                    novelty_threshold=0.7,
                    duplicate_threshold=threshold,
                    neighbours=3,
                ).admit(close)
            )
            asked = len(stub.requests)
        assert decision.gate == gate
        assert asked == (1 if gate == "accepted" else 0)


def test_only_neighbours_at_the_novelty_threshold_are_shown_to_the_model(index: TaskIndex):
    unrelated = variant(
        SEEDS[0],
        id="knots-1",
        description="Tie a named sailing knot from a verbal description.",
        instances=[
            i.model_copy(update={"instruction": f"Describe how to tie a bowline knot, step {n}."})
            for n, i in enumerate(SEEDS[0].instances)
        ],
    )
    with StubOpenAI([]) as stub:
        decision = asyncio.run(curator(stub, index).admit(unrelated))
        calls = len(stub.requests)
    assert all(similarity < 0.7 for _, similarity in decision.neighbours)
    assert decision.accepted and calls == 0
