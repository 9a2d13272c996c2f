"""Two real vLLM CPU servers behind one client (``server_urls``), one killed mid-evaluation.

Every (expert, task, instance) triple must be evaluated exactly once, with no record
turned into a failure by the death: the dead server's in-flight requests move to the
live one. Both servers must have answered.
"""

import asyncio
import dataclasses
import os
import signal
import threading
from collections.abc import Iterator

import pytest

from acdc.agents.judge import Judge
from acdc.agents.structured import caller_for
from acdc.agents.subjects import Subjects
from acdc.context import Context
from acdc.population.bootstrap import Population, make_breeder
from acdc.population.client import PopulationClient, open_client
from acdc.population.server import PopulationServer
from acdc.runstore import EvaluationStore
from acdc.tasks import load_tasks, seed_tasks_dir
from tests.integration_tests.conftest import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def two_servers(ctx: Context, population: Population) -> Iterator[list[PopulationServer]]:
    servers = [
        PopulationServer(
            dataclasses.replace(ctx, run_id=name, vllm_port=free_port()), population.base_dir
        )
        for name in ("a", "b")
    ]
    starters = [threading.Thread(target=s.start) for s in servers]  # both start at once
    for thread in starters:
        thread.start()
    for thread in starters:
        thread.join()
    try:
        assert all(s.healthy() for s in servers), [s.log_tail() for s in servers]
        yield servers
    finally:
        for server in servers:
            server.stop()


def test_every_triple_once_on_both_servers_with_one_killed_mid_evaluation(
    two_servers: list[PopulationServer], ctx: Context, population: Population, tmp_path
) -> None:
    breeder = make_breeder(ctx, population)
    children = [breeder.breed(population.seed_ids, seed=s, generation=1).id for s in (21, 22)]
    experts = [ctx.served_model_name, *children]
    tasks = {t.id: t for t in load_tasks(seed_tasks_dir()) if t.grading != "rubric"}
    tasks = dict(list(tasks.items())[:4])
    keys = [(e, t.id, i.id) for e in experts for t in tasks.values() for i in t.instances[:3]]
    store = EvaluationStore(tmp_path / "evaluations.jsonl")
    urls = [s.url for s in two_servers]
    victim = two_servers[1]
    assert victim.process is not None
    killed = threading.Event()
    opened: list[PopulationClient] = []

    def progress(done: int, total: int, tokens: int) -> None:
        # Kill the victim mid-evaluation once it has answered (on a loaded machine the
        # first answers can all come from the other server, which is no death test).
        if done >= 6 and not killed.is_set() and opened[0].answered.get(urls[1], 0) > 0:
            killed.set()
            os.killpg(victim.process.pid, signal.SIGKILL)  # type: ignore[union-attr]

    async def scenario() -> dict[str, int]:
        async with open_client(ctx, urls, population.store) as client:
            opened.append(client)
            judge = Judge(caller_for(ctx, "judge", urls[0]), ctx.prompts_dir)
            subjects = Subjects(client, judge, max_tokens=8, concurrency=6)
            await subjects.evaluate(keys, tasks, store, progress)
            return client.answered

    answered = asyncio.run(scenario())
    assert killed.is_set()
    assert not victim.healthy()
    records = store.records()
    assert sorted(r.key for r in records) == sorted(keys)  # each triple exactly once
    assert not [r.error for r in records if r.error], "the death turned answers into failures"
    assert all(r.response for r in records)
    assert answered[urls[0]] > 0 and answered[urls[1]] > 0, answered
    assert sum(answered.values()) == len(keys)
