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
    roles = dataclasses.replace(ctx, scientist_max_tokens=700, scientist_retries=3)
    scientist = Scientist(
        caller_for(roles, "scientist", server.url), reflection_rounds=0, novel_unrelated_share=0.8
    )
    judge = Judge(caller_for(roles, "judge", server.url))
    seeds = load_tasks(seed_tasks_dir())
    task = next(t for t in seeds if t.grading == "rubric")

    async def run() -> tuple:
        proposals = await asyncio.gather(
            *(
                scientist.create(pool_summary="- arithmetic", examples=seeds[:1], generation=1)
                for _ in range(2)
            )
        )
        grade = await judge.grade(task, task.instances[0], "I do not know.")
        return proposals, grade

    proposals, grade = asyncio.run(run())
    # Guided decoding makes the 135M model's output fit the schema: a proposal is a task
    # or breaks a task rule (e.g. a wrong reference format), never malformed output.
    for proposal in proposals:
        assert proposal.task is not None or proposal.reason.startswith("invalid task draft"), (
            proposal.reason
        )
    assert grade.score is not None and 0.0 <= grade.score <= 1.0, grade.reason
    assert grade.reasoning
