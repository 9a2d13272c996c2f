"""The money budget: prices, charges at the usage a server reports, stop, drain, resume.

Role replies come from stub OpenAI-compatible servers that report usage (10 prompt and
5 completion tokens per reply); the run itself (graph, checkpointer, run folder,
ChromaDB) is real, on the fake stack of tests/fake_stack.py.
"""

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver

from acdc.agents.schemas import Verdict
from acdc.agents.structured import StructuredCaller
from acdc.context import ConfigError, Context
from acdc.costs import COSTS_FILE, BudgetSpentError, CostLedger, CostMeter, Price
from acdc.graphs.coevolution import builder
from acdc.graphs.resources import close_all
from acdc.runstore import EvaluationStore
from acdc.taskpool import TaskPool
from tests.fake_stack import FakePopulation, FakeRoles, fake_settings, seed_references
from tests.stub_openai import StubOpenAI

VERDICT = json.dumps({"reasoning": "ok", "score": 1.0})
PRICE = Price(1.0, 1000.0)  # USD per million tokens: a reply (10 in, 5 out) costs $0.00501
PER_CALL = PRICE.cost(10, 5)


def test_prices_come_from_the_context_and_bad_ones_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx = Context(judge_price=["0.15", "0.6"], cost_budget_usd=2.5)  # type: ignore[list-item]
    assert ctx.judge_price == [0.15, 0.6] and ctx.scientist_price == []
    assert Price.of(ctx.judge_price).cost(1_000_000, 2_000_000) == pytest.approx(1.35)
    assert Price.of(ctx.scientist_price).free
    monkeypatch.setenv("ACDC_CURATOR_PRICE", "3,15")
    assert Context().curator_price == [3.0, 15.0]
    with pytest.raises(ConfigError, match="judge_price"):
        Context(judge_price=[1.0])
    with pytest.raises(ConfigError, match="cost_budget_usd"):
        Context(cost_budget_usd=-1)


def slow_verdict(body: dict[str, Any]) -> str:
    time.sleep(0.3)
    return VERDICT


def test_a_spent_budget_refuses_new_calls_and_lets_those_in_flight_finish(
    tmp_path: Path,
) -> None:
    budget = 3.5 * PER_CALL + PRICE.cost(0, 64)  # room for 3 calls beside one worst case
    ledger = CostLedger(budget, tmp_path / COSTS_FILE)
    with StubOpenAI([], default=slow_verdict) as stub:
        model = ChatOpenAI(
            model="stub", base_url=stub.url, api_key="-", max_retries=0, use_responses_api=False
        )  # type: ignore[arg-type]
        caller = StructuredCaller(
            model,
            retries=0,
            concurrency=8,
            local=True,
            meter=CostMeter(ledger, "judge", PRICE, max_tokens=64),
        )

        async def many() -> list[Any]:
            return await asyncio.gather(*(caller.call(Verdict, "Grade it.") for _ in range(8)))

        outcomes = asyncio.run(many())
    done = [o for o in outcomes if o.ok]
    refused = [o for o in outcomes if not o.ok]
    # Every call that started reached the server, finished and was charged; the rest
    # never left the process.
    assert len(stub.requests) == len(done) >= 3
    assert refused and all(o.reason.startswith("cost budget spent") for o in refused)
    assert ledger.spent == pytest.approx(len(done) * PER_CALL) and ledger.spent <= budget
    assert ledger.in_flight == pytest.approx(0.0) and ledger.exhausted
    saved = json.loads((tmp_path / COSTS_FILE).read_text())
    assert saved["by_generation"]["0"]["judge"] == pytest.approx(ledger.spent, rel=1e-6)
    # A resumed process reads what was spent; a larger budget lets calls start again.
    again = CostLedger(budget, tmp_path / COSTS_FILE)
    assert again.spent == pytest.approx(ledger.spent)
    again.set_budget(budget + 10 * PER_CALL)
    assert asyncio.run(again.reserve("judge", PRICE, 30, 5)) is not None


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
        costs = json.loads((ctx.run_dir / COSTS_FILE).read_text())
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
    resumed = json.loads((ctx.run_dir / COSTS_FILE).read_text())
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
