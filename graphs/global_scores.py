"""The global figures of a generation: the archive and the seeds on every task ever active.

DESIGN.md section 4 (*report*) judges progress on the global skill vector, as the
reference reports its results: figures on the active pool alone rise when the pool
shrinks (retiring what nobody passes lifts them), so the summary shows the global ones
first and the active-pool ones beside them. Before the figures are read, the archive
and the seeds are evaluated on every task ever active, missing triples only, like a
task force's candidates (``graphs/completion.py``): most cells are there already from
the generations the task was active in, so a generation asks for the new survivors'
cells on retired tasks. A cell that stays missing (a transient failure) is masked
(``population/scoreboard.py``). Rubric tasks of an untrusted judge are left out, as
everywhere scores count (``skill_matrix.counted_tasks``).
"""

from collections.abc import Sequence
from typing import Any

from acdc.graphs import phases
from acdc.graphs.resources import RunResources
from acdc.graphs.skill_matrix import counted_tasks, skills
from acdc.population.scoreboard import scoreboard
from acdc.types import ExpertId

PHASE = "global_evaluate"
"""Name of the evaluation's ``phase`` record in ``metrics.jsonl``."""


def complete(res: RunResources, archive: Sequence[ExpertId], generation: int) -> int:
    """Evaluate the archive and the seeds on every counted task ever active; returns tokens."""
    experts = phases.with_seeds(res, archive)
    tasks = counted_tasks(res, ever=True)
    return phases.evaluate_missing(res, experts, generation, tasks, phase=PHASE)


def global_figures(res: RunResources, archive: Sequence[ExpertId]) -> dict[str, Any]:
    """The ``global_*`` keys of the generation record, read from the run's evaluations.

    ``global_tasks``: tasks ever active (counted); ``global_coverage``: share of them
    some member or seed passes; ``global_best_fitness``: best member fitness;
    ``global_pass_rate``: mean over the tasks of the share of the members passing;
    ``seed_global_fitness``: best seed fitness; ``global_missing``: cells masked. Every
    figure is over evaluated cells only (see ``population/scoreboard.py``).
    """
    seeds = list(res.population.seed_ids)
    experts = phases.with_seeds(res, archive)
    _, solved, known = skills(res, experts, counted_tasks(res, ever=True))
    board = scoreboard(
        solved,
        known,
        [experts.index(e) for e in archive],
        [experts.index(e) for e in seeds],
    )
    return {
        "global_tasks": board.tasks,
        "global_coverage": round(board.coverage_with_seeds, 4),
        "global_best_fitness": round(board.best_fitness, 4),
        "global_pass_rate": round(board.pass_rate, 4),
        "seed_global_fitness": round(board.seed_fitness, 4),
        "global_missing": board.missing,
    }


def global_line(summary: dict[str, Any]) -> str:
    """The global figures as the summary's first words ("" for runs from before them)."""
    if "global_tasks" not in summary:
        return ""
    if summary["global_tasks"] == 0:
        return "no task ever active yet"
    masked = summary.get("global_missing", 0)
    return (
        f"all {summary['global_tasks']} tasks ever active: coverage "
        f"{summary['global_coverage']:.0%}, best fitness {summary['global_best_fitness']:.3f} "
        f"vs seed {summary['seed_global_fitness']:.3f}, pass rate "
        f"{summary['global_pass_rate']:.2f}" + (f" ({masked} cells masked)" if masked else "")
    )
