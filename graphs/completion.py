"""Complete skill vectors: every candidate expert on every task ever active, before a pick.

During a run an expert is only evaluated on the tasks active while it lives, so the
matrix a task force is picked from has holes, and a hole is no evidence of a fail: a
long-lived expert would look broader than a short-lived one that was never asked. Before
``acdc taskforce`` or ``acdc eval coverage`` picks, this evaluates the missing
(expert, task, instance) triples of every candidate (every expert with evaluations and
the seed) through the run's own evaluation store and subjects, so each triple is
evaluated once across runs, picks and resumes. A triple that still fails transiently
after ``evaluation_passes`` stays missing and is masked in the matrix
(``population/taskforce.py``). ``complete_skills: false`` skips this (masking only).

The store is appended to while ``acdc run`` may append to it too: each record is one
line, written with ``O_APPEND`` and keyed, so the worst case is one duplicate key that
the store ignores on reading.
"""

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Collection, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from acdc.agents.judge import Judge
from acdc.agents.structured import caller_for
from acdc.agents.subjects import Subjects
from acdc.context import Context
from acdc.models import subject_concurrency
from acdc.population.client import open_client
from acdc.population.experts import ExpertStore
from acdc.population.taskforce import skill_cells
from acdc.progress import Progress
from acdc.rundir import RunDir
from acdc.runstore import EvalKey, EvaluationStore
from acdc.taskpool import TaskPool
from acdc.types import TaskId

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Completion:
    """What completing the matrix did: triples evaluated now, and still missing after it."""

    evaluated: int
    missing: int


def missing_triples(ctx: Context, leave_out: Collection[TaskId] = ()) -> list[EvalKey]:
    """The (expert, task, instance) triples a complete matrix still needs."""
    experts, instances = skill_cells(ctx.run_dir, ctx.instances_per_task, [ctx.served_model_name])
    keys = [
        (e, t, i)
        for e in experts
        for t, ids in instances.items()
        if t not in leave_out
        for i in ids
    ]
    store = RunDir(ctx.run_dir, read_only=True).evaluations()
    return store.missing(keys)


def _run(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run ``coroutine`` on a fresh event loop in a worker thread (callers may hold a loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as worker:
        worker.submit(asyncio.run, coroutine).result()


def complete_skills(
    ctx: Context,
    server_urls: Sequence[str],
    experts: ExpertStore,
    leave_out: Collection[TaskId] = (),
) -> Completion:
    """Evaluate every missing triple of the run's skill matrix (see the module).

    Args:
        ctx: The run's settings (subjects' token limit, concurrency, judge, passes).
        server_urls: The population servers serving the run's experts (the first one
            also serves the judge when it is the local model).
        experts: The run's expert store.
        leave_out: Tasks that are no columns of the matrix (rubric tasks of an
            uncalibrated judge).
    """
    todo = missing_triples(ctx, leave_out)
    if not todo:
        return Completion(0, 0)
    pool = TaskPool.open(ctx.run_dir)
    tasks = {task_id: pool.get(task_id) for task_id in dict.fromkeys(t for _, t, _ in todo)}
    store = EvaluationStore(RunDir(ctx.run_dir, read_only=True).evaluations_file)
    before = len(store)
    progress = Progress("complete skills", len(todo))
    print(
        f"completing the skill matrix: {len(todo)} missing evaluations "
        f"({len({e for e, _, _ in todo})} experts, {len(tasks)} tasks)",
        flush=True,
    )

    async def one_pass() -> None:
        async with open_client(ctx, server_urls, experts) as client:
            judge = Judge(caller_for(ctx, "judge", server_urls[0]), ctx.prompts_dir)
            subjects = Subjects(
                client, judge, ctx.subject_max_tokens, subject_concurrency(ctx), ctx.prompts_dir
            )
            await subjects.evaluate(
                todo,
                tasks,
                store,
                lambda done, total, tok: progress.update(len(store) - before, len(todo), tok),
            )

    for attempt in range(1, ctx.evaluation_passes + 1):
        _run(one_pass())
        if not store.missing(todo):
            break
        if attempt < ctx.evaluation_passes:
            time.sleep(min(2.0 ** (attempt - 1), 30.0))
    progress.finish()
    left = len(store.missing(todo))
    if left:
        log.warning("%d evaluations still missing: masked in the skill matrix", left)
    return Completion(len(store) - before, left)
