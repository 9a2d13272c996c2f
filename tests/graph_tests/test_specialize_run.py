"""The specialize mutation in a run on the fake stack: niches from the run's own evaluations."""

import json
from pathlib import Path

from langgraph.checkpoint.memory import InMemorySaver

from acdc.context import Context
from acdc.graphs.coevolution import builder
from acdc.graphs.resources import close_all
from acdc.tasks import load_tasks, seed_tasks_dir
from tests.fake_stack import FakePopulation, FakeRoles, fake_settings, seed_references


def test_in_a_run_generation_two_children_specialize_on_their_parents_graded_answers(
    tmp_path: Path, chat_base: Path
) -> None:
    """The breed phase finds a niche from the run's evaluations and trains on passed answers.

    Generation 1 has no evaluations to draw a niche from, so its children fall back to
    svd_noise; generation 2's children are fine-tuned on answers of their first parent
    that the task's own grader passes (the fake server answers "Answer: <reference>" or
    "Answer: something else" by a fixed rule), in one capability.
    """
    references = seed_references()
    capabilities = {t.capability for t in load_tasks(seed_tasks_dir())}
    with FakePopulation(references) as population, FakeRoles(references) as roles:
        settings = fake_settings(tmp_path / "runs", chat_base, population, roles)
        settings |= {"run_id": "s", "mutation": "specialize", "specialize_steps": 2}
        settings |= {"specialize_min_examples": 1, "specialize_samples": 1, "sanity_check": False}
        settings |= {"request_retries": 0, "adapt_every": 5}
        ctx = Context(**settings)  # type: ignore[arg-type]
        graph = builder.compile(checkpointer=InMemorySaver())
        config = {"configurable": {"thread_id": "s"}, "recursion_limit": 200}
        for _ in graph.stream({}, config, context=ctx, stream_mode="updates"):
            pass
    close_all()

    records = [json.loads(p.read_text()) for p in (ctx.run_dir / "experts").glob("*/expert.json")]
    # A niche is the capability of a task of the run: a seed task or one the scientist wrote.
    capabilities |= {
        json.loads(p.read_text())["capability"] for p in (ctx.run_dir / "tasks").glob("*.json")
    }
    first = [r for r in records if r["generation"] == 1]
    second = [r for r in records if r["generation"] == 2]
    assert first and all(r["operators"][-1]["name"] == "svd_noise" for r in first)
    trained = [r for r in second if r["operators"][-1]["name"] == "specialize"]
    assert trained, [r["operators"][-1]["name"] for r in second]
    for record in trained:
        training = record["training"]
        assert training["niche"] in capabilities
        assert training["steps"] == 2 and training["examples"] >= 1
        examples = record["operators"][-1]["params"]["examples"]
        for prompt, answer in examples:
            question = next(q for q in references if q in prompt)
            assert answer == f"Answer: {references[question]}"  # only answers the grader passes
