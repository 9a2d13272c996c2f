"""What the ``specialize`` mutation trains on: a parent's own graded answers in one niche.

The niche of an expert is the capability on which it passes the most tasks *beyond*
the archive's average (so a strength of its own, not one everybody has); ties go to
more tasks passed, then to the label. The examples are the expert's answers to those
tasks' scored instances, sampled at ``specialize_temperature`` through the population
server with per-request seeds, and kept only when the task's own grader passes them.
Rubric tasks are left out (grading them would spend judge calls on training data);
prompts holding a question of the contamination gate's benchmark files are dropped.

Model output is untrusted: it is only ever training text and grader input here, and
the graders are the same that score evaluations.
"""

import asyncio
import dataclasses
import hashlib
import logging
from collections.abc import Sequence

from acdc.agents import graders
from acdc.agents.subjects import PROMPTS as SUBJECT_PROMPTS
from acdc.agents.subjects import question_text
from acdc.graphs.resources import RunResources
from acdc.graphs.skill_matrix import scored_instances, skills
from acdc.population.bootstrap import mutation_params
from acdc.population.breeding import Breeder
from acdc.population.client import PopulationClient
from acdc.population.finetune import Example
from acdc.population.finetune_data import benchmark_questions, drop_benchmark
from acdc.population.operators import registry
from acdc.population.operators.specialize import Specialize, choose_niche
from acdc.population.pass_rule import passes
from acdc.prompts.loader import load_prompt
from acdc.tasks import Task, TaskInstance
from acdc.types import ExpertId

log = logging.getLogger(__name__)


def niche_tasks(
    res: RunResources, expert: ExpertId, archive: Sequence[ExpertId]
) -> tuple[str, list[Task]] | None:
    """The expert's niche and the tasks of it that the expert passes (rubric left out)."""
    experts = list(dict.fromkeys([expert, *archive]))
    task_ids, matrix, known = skills(res, experts)
    tasks = {t.id: t for t in res.pool.active_tasks()}
    columns = [i for i, t in enumerate(task_ids) if tasks[t].grading != "rubric"]
    if not columns:
        return None
    solved = matrix[:, columns]
    capabilities = [tasks[task_ids[i]].capability for i in columns]
    niche = choose_niche(solved, capabilities, 0, known[:, columns])
    if niche is None:
        return None
    passed = [
        tasks[task_ids[c]]
        for j, c in enumerate(columns)
        if solved[0, j] and capabilities[j] == niche
    ]
    return niche, passed


async def passing_answers(
    res: RunResources, client: PopulationClient, expert: ExpertId, tasks: Sequence[Task], seed: int
) -> list[Example]:
    """The expert's sampled answers to ``tasks`` that their graders pass (deduplicated)."""
    prompt = load_prompt("subject_answer", SUBJECT_PROMPTS["subject_answer"], res.ctx.prompts_dir)
    jobs = [
        (task, instance, sample)
        for task in tasks
        for instance in scored_instances(res, task)
        for sample in range(res.ctx.specialize_samples)
    ]

    async def one(task: Task, instance: TaskInstance, sample: int) -> Example | None:
        text = prompt.render(instruction=question_text(instance))
        digest = hashlib.sha256(f"{seed}|{task.id}|{instance.id}|{sample}".encode()).hexdigest()
        try:
            reply = await client.chat(
                expert,
                [{"role": "user", "content": text}],
                max_tokens=res.ctx.subject_max_tokens,
                temperature=res.ctx.specialize_temperature,
                seed=int(digest[:8], 16),
            )
            grade = await asyncio.to_thread(graders.grade, task, instance, reply.text)
        except Exception as err:  # a failed sample is one example less, never a failed breed
            log.warning("specialize sample of %s on %s failed: %s", expert, task.id, err)
            return None
        ok = reply.finish_reason != "length" and not grade.failed
        good = ok and passes(grade.score, res.ctx.pass_threshold)
        return Example(text, reply.text) if good else None

    found = await asyncio.gather(*(one(*job) for job in jobs))
    unique = list(dict.fromkeys(e for e in found if e is not None))
    return unique[: res.ctx.specialize_max_examples]


def specialization(
    res: RunResources,
    operator: Specialize,
    parent: ExpertId,
    archive: Sequence[ExpertId],
    seed: int,
) -> Specialize | None:
    """``operator`` given the parent's niche examples, or None when it has too few."""
    found = niche_tasks(res, parent, archive)
    if found is None:
        log.info("specialize: %s passes no task of any capability; no niche", parent)
        return None
    niche, tasks = found
    res.ensure_server()

    async def sample() -> list[Example]:
        async with res.client() as client:
            return await passing_answers(res, client, parent, tasks, seed)

    examples = drop_benchmark(res.run_async(sample()), benchmark_questions(res.ctx.benchmark_files))
    if len(examples) < res.ctx.specialize_min_examples:
        log.info(
            "specialize: %s has %d passing answers in niche %r (fewer than %d)",
            parent,
            len(examples),
            niche,
            res.ctx.specialize_min_examples,
        )
        return None
    pairs = tuple((e.prompt, e.answer) for e in examples)
    return dataclasses.replace(operator, niche=niche, examples=pairs)


def child_breeder(
    res: RunResources,
    breeder: Breeder,
    parents: Sequence[ExpertId],
    archive: Sequence[ExpertId],
    seed: int,
) -> Breeder:
    """The breeder of one child: ``specialize`` gets the first parent's niche examples.

    A parent without a niche (no evaluations yet, as in generation 0, or too few
    passing answers) gets its child mutated by ``svd_noise`` with the run's settings.
    """
    if not isinstance(breeder.mutation, Specialize):
        return breeder
    mutation = specialization(res, breeder.mutation, parents[0], archive, seed)
    if mutation is None:
        fallback = registry.create("svd_noise", "mutation", **mutation_params(res.ctx, "svd_noise"))
        return dataclasses.replace(breeder, mutation=fallback)
    return dataclasses.replace(breeder, mutation=mutation)
