"""The roles against the real local model: SmolLM2 on the vLLM CPU server."""

import asyncio
import dataclasses

import pytest

from acdc.agents.judge import Judge
from acdc.agents.scientist import Scientist
from acdc.agents.structured import caller_for
from acdc.context import Context
from acdc.population.server import PopulationServer
from acdc.tasks import load_tasks, seed_tasks_dir

pytestmark = pytest.mark.integration


def test_the_local_model_writes_a_schema_valid_task_and_grades_an_answer(
    ctx: Context, server: PopulationServer
):
    # Greedy, so the check does not depend on luck; the default token limit.
    roles = dataclasses.replace(
        ctx, scientist_temperature=0.0, scientist_retries=0, scientist_timeout=900.0
    )
    scientist = Scientist(caller_for(roles, "scientist", server.url), reflection_rounds=0)
    judge = Judge(caller_for(roles, "judge", server.url))
    seeds = load_tasks(seed_tasks_dir())
    task = next(t for t in seeds if t.grading == "rubric")

    async def run() -> tuple:
        return await asyncio.gather(
            scientist.create(pool_summary="- arithmetic", examples=seeds[:1], generation=1),
            judge.grade(task, task.instances[0], "I do not know."),
        )

    proposal, grade = asyncio.run(run())
    # Compact guided decoding plus the schema's length caps make the 135M model's output
    # fit the schema within the token limit: a proposal is a task or breaks a task rule
    # (e.g. a wrong reference format), never malformed or truncated output.
    assert proposal.task is not None or proposal.reason.startswith("invalid task draft"), (
        proposal.reason
    )
    assert grade.score is not None and 0.0 <= grade.score <= 1.0, grade.reason
    assert grade.reasoning
