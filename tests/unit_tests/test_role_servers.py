"""Roles on their own OpenAI-compatible server, beside the population server.

The paper's scientist and judge are big models on their own GPUs: ``judge_base_url``
points the judge at that server and ``judge_concurrency`` bounds its calls in flight
there, independently of ``subject_concurrency`` on the population server. Two real
local HTTP servers; only the words are scripted.
"""

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

from acdc.agents.judge import Judge
from acdc.agents.structured import caller_for
from acdc.agents.subjects import Subjects
from acdc.context import Context
from acdc.population.client import PopulationClient
from acdc.population.experts import ExpertStore
from acdc.runstore import EvaluationStore
from acdc.tasks import Task
from tests.fake_stack import FakePopulation
from tests.stub_openai import StubOpenAI


class SlowJudge(StubOpenAI):
    """A judge server that takes 0.2 s per call and records how many were in flight."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.most = 0
        self.count = threading.Lock()
        super().__init__([], default=json.dumps({"reasoning": "matches", "score": 1.0}))

    def respond(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.count:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        time.sleep(0.2)
        try:
            return super().respond(body)
        finally:
            with self.count:
                self.in_flight -= 1


def rubric_task(n: int) -> Task:
    return Task.model_validate(
        {
            "id": f"r{n}",
            "name": f"Explain {n}",
            "description": "Explain a fact in one sentence.",
            "capability": "explanation",
            "subject": "general",
            "difficulty": 2,
            "grading": "rubric",
            "rubric": "Full marks for a correct, clear sentence.",
            "instances": [
                {"id": f"i{k}", "instruction": f"Why is fact {n}.{k} true?", "reference": "x"}
                for k in range(3)
            ],
        }
    )


def test_the_judge_runs_on_its_own_server_with_its_own_concurrency(tmp_path: Path) -> None:
    tasks = {t.id: t for t in (rubric_task(n) for n in range(4))}
    keys = [("base", t.id, i.id) for t in tasks.values() for i in t.instances]
    with FakePopulation({}) as population, SlowJudge() as judge_server:
        population_url = population.url.removesuffix("/v1")
        ctx = Context(
            judge_base_url=judge_server.url,
            judge_model="big-judge",
            judge_concurrency=2,
            subject_concurrency=8,
        )

        async def scenario() -> None:
            client = PopulationClient(
                population_url, ExpertStore(tmp_path / "experts"), base_id="base", max_loaded=2
            )
            try:
                # The population server is every role's default; the judge names its own.
                judge = Judge(caller_for(ctx, "judge", population_url))
                subjects = Subjects(client, judge, max_tokens=16, concurrency=8)
                store = EvaluationStore(tmp_path / "evaluations.jsonl")
                await subjects.evaluate(keys, tasks, store)
                assert {r.key for r in store.records()} == set(keys)
                assert all(r.score == 1.0 and not r.error for r in store.records())
            finally:
                await client.aclose()

        started = time.monotonic()
        asyncio.run(scenario())
        elapsed = time.monotonic() - started
    assert len(judge_server.requests) == len(keys)  # every grade on the judge's server ...
    assert {r["model"] for r in judge_server.requests} == {"big-judge"}
    assert all(r["model"] == "base" for r in population.requests)  # ... none on the population
    assert len(population.requests) == len(keys)
    assert judge_server.most == 2  # its own bound, not subject_concurrency's 8
    assert elapsed >= len(keys) / 2 * 0.2 * 0.9
