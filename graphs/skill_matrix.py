"""The run's skill matrix: which tasks count, which instances are scored, who passes what.

Every figure of a run (fitness, DNS, the summary, the task adaptation, the niche of a
``specialize`` parent) reads the experts' skills here, from the run's evaluation store,
so they all count the same tasks and mask the same missing cells.
"""

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from acdc.agents.calibration import counted, rubric_off
from acdc.graphs.resources import RunResources
from acdc.population import archive as dns
from acdc.tasks import Task, TaskInstance
from acdc.types import ExpertId, TaskId


def scored_instances(res: RunResources, task: Task) -> list[TaskInstance]:
    """The instances of ``task`` the experts answer (``instances_per_task``; 0 = all)."""
    count = res.ctx.instances_per_task
    return task.instances[:count] if count else task.instances


def counted_tasks(res: RunResources, ever: bool = False) -> list[Task]:
    """The tasks that scores count on: the active pool, or every task ever active.

    Rubric tasks are left out while the run's judge is not trusted: an uncalibrated judge
    grades nothing, and its tasks are out of fitness, DNS and coverage.
    """
    off = rubric_off(res.run.root, res.ctx)
    ids = res.pool.ever() if ever else res.pool.active
    return counted([res.pool.get(t) for t in ids], off)


class Skills(NamedTuple):
    """The experts' skill matrix over a set of tasks, with the mask of evaluated cells."""

    tasks: list[TaskId]
    """Column order."""
    solved: np.ndarray
    """Bool ``(n_experts, n_tasks)``: the mean instance score reaches ``pass_threshold``."""
    known: np.ndarray
    """Bool like ``solved``: every scored instance of the cell was evaluated. A cell not
    known is masked by fitness, DNS and coverage (``population/archive.py``), never a fail."""


def skills(
    res: RunResources, experts: Sequence[ExpertId], tasks: Sequence[Task] | None = None
) -> Skills:
    """The experts' skill matrix on ``tasks`` (the counted active pool if None) and its mask."""
    chosen = counted_tasks(res) if tasks is None else tasks
    instances = {t.id: [i.id for i in scored_instances(res, t)] for t in chosen}
    scores = res.run.evaluations().mean_scores(experts, instances)
    columns = list(instances)
    solved = dns.skill_matrix(scores, experts, columns, res.ctx.pass_threshold)
    return Skills(columns, solved, dns.known_matrix(scores, experts, columns))
