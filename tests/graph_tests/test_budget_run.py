"""The money budget in a run: it stops at the budget and resumes with a larger one.

The run (graph, checkpointer, run folder, ChromaDB) is real, on the fake stack of
tests/fake_stack.py; the role stub reports usage (10 prompt and 5 completion tokens per
reply), so every charge is known.
"""

import json
from collections import Counter
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from acdc.context import Context
from acdc.costs import BudgetSpentError, Price
from acdc.graphs.coevolution import builder
from acdc.graphs.resources import close_all
from acdc.rundir import RunDir
from acdc.runstore import EvaluationStore
from acdc.taskpool import TaskPool
from tests.fake_stack import FakePopulation, FakeRoles, fake_settings, seed_references
from tests.stub_openai import StubOpenAI

PRICE = Price(1.0, 1000.0)  # USD per million tokens: a reply (10 in, 5 out) costs $0.00501
PER_CALL = PRICE.cost(10, 5)


def priced_context(
    tmp_path: Path, tiny_base: Path, population: FakePopulation, roles: StubOpenAI, budget: float
) -> Context:
    """The fake run with the scientist and judge priced (the curator stays free)."""
    settings = fake_settings(tmp_path / "runs", tiny_base, population, roles)
    settings |= {"run_id": "money", "task_rounds": 2, "adapt_every": 2, "adapt_parents": 2}
    settings |= {"request_retries": 0, "cost_budget_usd": budget}
    for role in ("scientist", "judge", "curator"):
        settings[f"{role}_max_tokens"] = 16
    for role in ("scientist", "judge"):
        settings[f"{role}_price"] = [PRICE.input_per_m, PRICE.output_per_m]
    return Context(**settings)  # type: ignore[arg-type]


def test_the_run_stops_at_the_budget_and_resumes_with_a_larger_one(
    tmp_path: Path, tiny_base: Path
) -> None:
    references = seed_references()
    with FakePopulation(references) as population, FakeRoles(references) as roles:
        ctx = priced_context(tmp_path, tiny_base, population, roles, budget=0.08)
        graph = builder.compile(checkpointer=InMemorySaver())
        config = {"configurable": {"thread_id": "money"}, "recursion_limit": 200}
        with pytest.raises(BudgetSpentError, match="cost budget spent"):
            graph.invoke({}, config, context=ctx)
        stopped_at = graph.get_state(config).next
        costs = json.loads(RunDir(ctx.run_dir).costs_file.read_text())
        assert 0.04 < costs["spent_usd"] <= 0.08
        priced = Counter(r["response_format"]["json_schema"]["name"] for r in roles.requests)
        charged = sum(n for name, n in priced.items() if name != "NoveltyCheck")  # curator free
        assert costs["spent_usd"] == pytest.approx(charged * PER_CALL, rel=1e-6)
        events = [json.loads(x) for x in (ctx.run_dir / "metrics.jsonl").read_text().splitlines()]
        assert events[-1]["event"] == "stop" and "cost budget spent" in events[-1]["reason"]
        asked = len(roles.requests)
        # Proposals the budget stopped are not refusals: a resume makes them again.
        assert not TaskPool.open(ctx.run_dir).rejected

        more = Context(**{**ctx.to_dict(), "cost_budget_usd": 100.0})
        state = graph.invoke(None, config, context=more)
        close_all()
    assert stopped_at and state["generation"] == 2
    assert state["stop_reason"].startswith("generation budget")
    assert len(roles.requests) > asked
    resumed = json.loads(RunDir(ctx.run_dir).costs_file.read_text())
    assert resumed["spent_usd"] > costs["spent_usd"]
    assert set(resumed["by_generation"]) >= {"0", "2"}  # growth; adaptation in generation 2
    keys = [r.key for r in EvaluationStore(ctx.run_dir / "evaluations.jsonl").records()]
    assert len(keys) == len(set(keys))
    generations = [
        e
        for e in map(json.loads, (ctx.run_dir / "metrics.jsonl").read_text().splitlines())
        if e["event"] == "generation"
    ]
    assert generations[-1]["cost_usd_by_role"]["judge"] > 0
    assert generations[-1]["cost_usd_total"] == pytest.approx(resumed["spent_usd"], rel=1e-3)
