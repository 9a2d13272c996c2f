"""The money budget: prices, charges at the usage a server reports, drain, resume.

Role replies come from a stub OpenAI-compatible server that reports usage (10 prompt and
5 completion tokens per reply). A run stopped by its budget: tests/graph_tests/test_budget_run.py.
"""

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_openai import ChatOpenAI

from acdc.agents.schemas import Verdict
from acdc.agents.structured import StructuredCaller
from acdc.context import ConfigError, Context
from acdc.costs import CostLedger, CostMeter, Price
from acdc.rundir import RunDir
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
    ledger = CostLedger(budget, RunDir(tmp_path).costs_file)
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
    saved = json.loads(RunDir(tmp_path).costs_file.read_text())
    assert saved["by_generation"]["0"]["judge"] == pytest.approx(ledger.spent, rel=1e-6)
    # A resumed process reads what was spent; a larger budget lets calls start again.
    again = CostLedger(budget, RunDir(tmp_path).costs_file)
    assert again.spent == pytest.approx(ledger.spent)
    again.set_budget(budget + 10 * PER_CALL)
    assert asyncio.run(again.reserve("judge", PRICE, 30, 5)) is not None
