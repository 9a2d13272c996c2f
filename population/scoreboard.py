"""What an archive achieves on a set of tasks, the seeds beside it, cells never evaluated masked.

Progress is judged twice per generation (DESIGN.md section 4, *report*): on the active
pool, and on every task ever active (the *global* figures). Figures on the active pool
alone rise when the pool shrinks: retiring the tasks nobody passes lifts its coverage and
pass rate although no expert learned anything. A retired task stays a column of the
global matrix, so the global figures move only when the experts do.

Pure functions over the bool ``solved`` and ``known`` matrices of shape
``(n_experts, n_tasks)`` of ``population/archive.py``: ``known[i, t]`` is False where
expert ``i`` was never evaluated on task ``t``, and such a cell is left out of every
figure (neither a pass nor a fail). Rows are picked by index; mapping ids is the caller's.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from acdc.population.archive import fitness
from acdc.population.coverage import coverage


@dataclass(frozen=True)
class Scoreboard:
    """Figures of the archive's members and the seeds on one set of tasks.

    Attributes:
        tasks: Tasks (columns) the figures are over.
        coverage: Share of the tasks some member passes, over the tasks some member was
            evaluated on.
        coverage_with_seeds: The same for the members and the seeds together.
        best_fitness: Highest member fitness (share of its evaluated tasks passed).
        mean_fitness: Mean member fitness.
        pass_rate: Mean over the tasks of the share of the members evaluated on the task
            that pass it (tasks no member was evaluated on are left out).
        pass_rate_std: Standard deviation of that share across the same tasks.
        seed_fitness: Highest seed fitness.
        discoveries: Tasks some member passes while every seed was evaluated on them and
            failed (with no seeds: tasks some member passes).
        missing: Cells of the members and seeds never evaluated (masked).
    """

    tasks: int
    coverage: float
    coverage_with_seeds: float
    best_fitness: float
    mean_fitness: float
    pass_rate: float
    pass_rate_std: float
    seed_fitness: float
    discoveries: int
    missing: int


def pass_rates(solved: np.ndarray, known: np.ndarray, rows: Sequence[int]) -> np.ndarray:
    """Share of ``rows`` evaluated on each task that pass it.

    ``rate[t] = (solved & known)[rows, t].sum() / known[rows, t].sum()``.

    Returns:
        Float array of shape ``(n_tasks,)``; NaN where none of ``rows`` was evaluated.
    """
    picked = list(rows)
    evaluated = known[picked].sum(axis=0).astype(float)
    passed = (solved & known)[picked].sum(axis=0).astype(float)
    out = np.full(solved.shape[1], np.nan)
    return np.asarray(np.divide(passed, evaluated, out=out, where=evaluated > 0), dtype=float)


def scoreboard(
    solved: np.ndarray, known: np.ndarray, members: Sequence[int], seeds: Sequence[int]
) -> Scoreboard:
    """The :class:`Scoreboard` of ``members`` beside ``seeds`` (row indices; may overlap).

    Args:
        solved: Bool array of shape ``(n_experts, n_tasks)``.
        known: Bool array of the same shape, True where the cell was evaluated.
        members: Rows of the archive's members.
        seeds: Rows of the seed experts.

    Raises:
        ValueError: If ``known`` does not match ``solved`` or a row is out of range.
    """
    if known.shape != solved.shape or known.dtype != bool:
        raise ValueError(f"known must be a bool array of shape {solved.shape}, got {known.shape}")
    members, seeds = list(members), list(seeds)
    outside = [row for row in members + seeds if not 0 <= row < solved.shape[0]]
    if outside:
        raise ValueError(f"rows {outside} are out of range for {solved.shape[0]} experts")
    fit = fitness(solved, known)
    rates = pass_rates(solved, known, members)
    rated = rates[~np.isnan(rates)]
    ours = (solved & known)[members].any(axis=0)
    if seeds:
        seed_failed = (known & ~solved)[seeds].all(axis=0)
        discovered = ours & seed_failed
    else:
        discovered = ours
    rows = list(dict.fromkeys(members + seeds))
    return Scoreboard(
        tasks=solved.shape[1],
        coverage=coverage(solved, members, known),
        coverage_with_seeds=coverage(solved, rows, known),
        best_fitness=float(fit[members].max()) if members else 0.0,
        mean_fitness=float(fit[members].mean()) if members else 0.0,
        pass_rate=float(rated.mean()) if rated.size else 0.0,
        pass_rate_std=float(rated.std()) if rated.size else 0.0,
        seed_fitness=float(fit[seeds].max()) if seeds else 0.0,
        discoveries=int(discovered.sum()),
        missing=int((~known[rows]).sum()) if rows else 0,
    )
