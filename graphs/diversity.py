"""The archive's diversity per generation: do its experts answer the pool differently?

Read from the evaluation records of the archive on the active pool, one column per
scored task instance: the mean pairwise disagreement of the members' final answers and
the coverage each member of the greedy task force adds (``population/diversity.py``).
Answers are compared as the graders read them (an option letter, a number, or the
normalized final answer), so "B" and "Answer: (B)." agree.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np

from acdc.agents import calibration
from acdc.agents.graders import answer_key
from acdc.graphs.resources import RunResources
from acdc.graphs.skill_matrix import scored_instances
from acdc.population.diversity import gains_text, greedy_gains, pairwise_disagreement
from acdc.population.pass_rule import passes
from acdc.types import ExpertId


def archive_diversity(res: RunResources, archive: Sequence[ExpertId]) -> dict[str, Any]:
    """``disagreement`` and greedy ``coverage_gains`` of ``archive`` on the active pool."""
    off = calibration.rubric_off(res.run.root, res.ctx)
    tasks = calibration.counted(res.pool.active_tasks(), off)
    records = {r.key: r for r in res.run.evaluations().records()}
    columns = [(t, i) for t in tasks for i in scored_instances(res, t)]
    answers: list[list[str | None]] = []
    solved = np.zeros((len(archive), len(columns)), dtype=bool)
    for row, expert in enumerate(archive):
        line: list[str | None] = []
        for column, (task, instance) in enumerate(columns):
            record = records.get((expert, task.id, instance.id))
            line.append(None if record is None else answer_key(task, instance, record.response))
            score = None if record is None else record.score
            solved[row, column] = passes(score, res.ctx.pass_threshold)
        answers.append(line)
    gains = greedy_gains(solved, res.ctx.taskforce_size)
    return {
        "disagreement": round(pairwise_disagreement(answers), 4),
        "coverage_gains": [round(g, 4) for g in gains],
    }


def diversity_line(summary: dict[str, Any]) -> str:
    """One printed line of the generation summary ("" for runs from before it existed)."""
    if "disagreement" not in summary:
        return ""
    gains = gains_text(
        summary["coverage_gains"], summary.get("pool_size", 1), summary.get("coverage", 1.0)
    )
    return (
        f"\n   diversity: disagreement {summary['disagreement']:.2f}; "
        f"greedy task force gains {gains}"
    )
