"""The bundled seed passes some bundled seed tasks, so a run's curriculum starts above 0.

Measured the way a run scores the seed: the run's own subjects (temperature 0,
prompts/subject_answer.txt) and graders on the real vLLM CPU server, at the smoke
config's settings (the first 3 instances, 64 tokens), rubric tasks left out as with the
bundled uncalibrated judge. With only the ten hard seed tasks the seed's fitness was 0.
"""

import asyncio
from pathlib import Path

import pytest

from acdc.agents.judge import Judge
from acdc.agents.structured import caller_for
from acdc.agents.subjects import Subjects
from acdc.context import Context
from acdc.population import archive
from acdc.population.bootstrap import Population
from acdc.population.client import open_client
from acdc.population.server import PopulationServer
from acdc.runstore import EvaluationStore
from acdc.tasks import load_tasks, seed_tasks_dir

pytestmark = pytest.mark.integration


def test_the_bundled_seed_passes_a_bundled_seed_task(
    server: PopulationServer, ctx: Context, population: Population, tmp_path: Path
) -> None:
    tasks = {t.id: t for t in load_tasks(seed_tasks_dir()) if t.grading != "rubric"}
    seed = ctx.served_model_name
    scored = {t.id: [i.id for i in t.instances[:3]] for t in tasks.values()}
    keys = [(seed, task_id, i) for task_id, ids in scored.items() for i in ids]
    store = EvaluationStore(tmp_path / "evaluations.jsonl")

    async def answer() -> None:
        async with open_client(ctx, [server.url], population.store) as client:
            judge = Judge(caller_for(ctx, "judge", server.url), ctx.prompts_dir)
            subjects = Subjects(client, judge, max_tokens=64, concurrency=16)
            await subjects.evaluate(keys, tasks, store)

    asyncio.run(answer())
    assert len(store) == len(keys)
    assert not [r.error for r in store.records() if r.error]
    means = store.mean_scores([seed], scored)
    skills = archive.skill_matrix(means, [seed], list(scored), ctx.pass_threshold)
    assert archive.fitness(skills)[0] > 0, means
