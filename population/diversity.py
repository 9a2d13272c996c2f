"""How differently the experts answer: pairwise disagreement and greedy coverage gains.

A task force beats one model only when its members are right on *different* questions.
Two figures say whether an archive can supply that:

- **Disagreement**: for each pair of experts, the share of questions (both answered)
  on which their final answers differ; averaged over all pairs. Near 0 means the
  experts are copies of each other, whatever their accuracies.
- **Coverage gains**: the coverage each member of the greedy task force adds to the
  members picked before it (``population/coverage.py``). The first gain is the best
  member's accuracy; the later ones are what diversity buys.

Pure functions over arrays; rows are experts, columns are questions (or task
instances). Mapping rows back to expert ids is the caller's job.
"""

from collections.abc import Sequence
from itertools import combinations

import numpy as np

from acdc.population.coverage import SolvedMatrix, greedy_task_force

AnswerTable = Sequence[Sequence[str | None]]
"""``answers[i][q]``: expert ``i``'s final answer to question ``q``, normalized by the
caller so equal answers compare equal; ``None`` where expert ``i`` has no record for
``q`` (the question is then left out of every pair with ``i``). An answer the grader
could not read should be ``""``: "no answer" is a shared answer, not a missing one."""


def pairwise_disagreement(answers: AnswerTable) -> float:
    """Mean over expert pairs of the share of commonly answered questions they differ on.

    Args:
        answers: One row per expert, one column per question (see :data:`AnswerTable`).

    Returns:
        A float in [0, 1]; 0.0 with fewer than two experts or no pair with a common
        question (pairs without one are left out of the mean).

    Raises:
        ValueError: If the rows have different lengths.
    """
    widths = {len(row) for row in answers}
    if len(widths) > 1:
        raise ValueError(f"every expert needs one answer per question, got widths {widths}")
    shares: list[float] = []
    for first, second in combinations(answers, 2):
        both = [
            (a, b) for a, b in zip(first, second, strict=True) if a is not None and b is not None
        ]
        if both:
            shares.append(sum(a != b for a, b in both) / len(both))
    return float(np.mean(shares)) if shares else 0.0


def coverage_gains(solved: SolvedMatrix, members: Sequence[int]) -> list[float]:
    """Coverage each member adds to those before it, in order (sums to the coverage).

    Args:
        solved: Bool array of shape ``(n_experts, n_columns)``.
        members: Row indices in pick order; a repeat adds 0.

    Returns:
        One share of columns per member; empty when there are no columns.
    """
    if solved.shape[1] == 0:
        return []
    covered = np.zeros(solved.shape[1], dtype=bool)
    gains = []
    for index in members:
        new = solved[index] & ~covered
        gains.append(float(new.mean()))
        covered |= new
    return gains


def greedy_gains(solved: SolvedMatrix, n: int) -> list[float]:
    """Coverage gains of the greedy task force of (at most) ``n`` members.

    Ties in the greedy pick go to the more accurate expert, as in the run's task force.
    """
    if solved.shape[0] == 0:
        return []
    accuracy = solved.mean(axis=1) if solved.shape[1] else np.zeros(solved.shape[0])
    return coverage_gains(solved, greedy_task_force(solved, n, [float(a) for a in accuracy]))


def gains_text(gains: Sequence[float], pool_size: int, coverage: float) -> str:
    """The greedy force's gains as "+40%, +17%", or why there are none to show.

    A gain on a pool the same summary calls empty, or on one no member passes a task of,
    would read as progress where there is none; those say so instead.
    """
    if pool_size == 0:
        return "none (the active pool is empty)"
    if coverage == 0:
        return "none (no active task is passed)"
    return ", ".join(f"+{g:.0%}" for g in gains) or "none"
