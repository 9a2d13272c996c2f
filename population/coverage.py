"""Coverage of a task force, and the greedy pick of N complementary experts.

AC/DC does not end with one best model: from the archive it picks a "task force" of N
experts and counts a question as answered when at least one of them solves it. The
N fittest experts tend to solve the same easy questions, so a task force is picked for
coverage instead: greedy maximum coverage, the classic ``1 - 1/e`` approximation,
adds at each step the expert that solves the most questions nobody picked so far solves.

Everything here is a pure function over a bool "solved" matrix of shape
``(n_experts, n_columns)``: rows are experts (positions in some id sequence kept by the
caller), columns are questions or tasks, ``True`` where the expert solved it. Experts
are referred to by row index; mapping indices back to ids is the caller's job.

Baselines for an honest comparison live here too: the N fittest experts
(:func:`top_fitness_task_force`) and N experts drawn at random
(:func:`random_task_force`). The fourth baseline of the paper, N temperature samples of
the seed model, needs generation and is answered by the population server, not here.
"""

import math
import random
from collections.abc import Sequence
from typing import TypeAlias

import numpy as np

SolvedMatrix: TypeAlias = np.ndarray
"""Bool array of shape ``(n_experts, n_columns)``; ``[i, j]`` is True when expert ``i``
solved question (or task) ``j``."""

ExpertIndex: TypeAlias = int
"""Row of an expert in a :data:`SolvedMatrix`."""

Capability: TypeAlias = str
"""Label of the skill a column tests, e.g. ``"math"`` or ``"coding"``."""


def _check_solved(solved: SolvedMatrix) -> None:
    """Reject anything but a 2-D bool array, so a score matrix is never read as solved."""
    if not isinstance(solved, np.ndarray) or solved.ndim != 2 or solved.dtype != bool:
        shape = getattr(solved, "shape", None)
        dtype = getattr(solved, "dtype", type(solved).__name__)
        raise ValueError(
            f"solved must be a 2-D bool array of shape (n_experts, n_columns), got {dtype} {shape}"
        )


def _check_indices(indices: Sequence[int], n_experts: int, what: str) -> None:
    """Reject indices outside ``[0, n_experts)``; negative ones would wrap around silently."""
    bad = [i for i in indices if not 0 <= i < n_experts]
    if bad:
        raise ValueError(f"{what} indices {bad} are out of range for {n_experts} experts")


def _check_n(n: int) -> None:
    """A task force needs at least one member."""
    if n < 1:
        raise ValueError(f"task force size n must be at least 1, got {n}")


def coverage(
    solved: SolvedMatrix, members: Sequence[ExpertIndex], known: np.ndarray | None = None
) -> float:
    """Share of columns solved by at least one of ``members``, over the columns evaluated.

    ``coverage = (solved & known)[members].any(0).sum() / known[members].any(0).sum()``:
    a column none of the members was evaluated on is masked (out of the denominator),
    never a column they failed.

    Args:
        solved: Bool array of shape ``(n_experts, n_columns)``.
        members: Row indices of the task force; repeats count once.
        known: Bool array of the same shape, True where the cell was evaluated; None
            means every cell was.

    Returns:
        A float in [0, 1]; 0.0 when there are no evaluated columns or no members.

    Raises:
        ValueError: If ``solved`` is not 2-D bool, ``known`` does not match it, or a
            member index is out of range.
    """
    _check_solved(solved)
    _check_indices(members, solved.shape[0], "member")
    if known is None:
        known = np.ones(solved.shape, dtype=bool)
    elif known.shape != solved.shape or known.dtype != bool:
        raise ValueError(f"known must be a bool array of shape {solved.shape}, got {known.shape}")
    rows = list(members)
    if not rows:
        return 0.0
    evaluated = known[rows].any(axis=0)
    if not evaluated.any():
        return 0.0
    return float((solved & known)[rows].any(axis=0).sum() / evaluated.sum())


def coverage_by_capability(
    solved: SolvedMatrix,
    members: Sequence[ExpertIndex],
    capabilities: Sequence[Capability],
) -> dict[Capability, float]:
    """Coverage of ``members`` on the columns of each capability, separately.

    Overall coverage hides a task force that is strong on one skill and blind on
    another; this breaks it down. The overall number is :func:`coverage`.

    Args:
        solved: Bool array of shape ``(n_experts, n_columns)``.
        members: Row indices of the task force; repeats count once.
        capabilities: Label of each column, length ``n_columns``.

    Returns:
        ``{label: share of that label's columns solved by some member}``, labels in
        order of first appearance; every value is 0.0 when ``members`` is empty.

    Raises:
        ValueError: If ``solved`` is not 2-D bool, a member index is out of range, or
            ``capabilities`` does not have one label per column.
    """
    _check_solved(solved)
    _check_indices(members, solved.shape[0], "member")
    if len(capabilities) != solved.shape[1]:
        raise ValueError(
            f"capabilities must have one label per column: got {len(capabilities)} "
            f"labels for {solved.shape[1]} columns"
        )
    # Columns solved by some member, shape (n_columns,).
    covered: np.ndarray = np.zeros(solved.shape[1], dtype=bool)
    if len(members) > 0:
        covered = np.asarray(solved[list(members)].any(axis=0))
    labels = np.asarray(capabilities, dtype=object)
    result: dict[Capability, float] = {}
    for label in dict.fromkeys(capabilities):
        result[label] = float(covered[labels == label].mean())
    return result


def greedy_task_force(
    solved: SolvedMatrix,
    n: int,
    fitness: Sequence[float],
    required: Sequence[ExpertIndex] = (),
) -> list[ExpertIndex]:
    """Pick up to ``n`` experts that together solve as many columns as possible.

    Starts from ``required`` (e.g. the instruct seed, which the paper always keeps in
    the task force), then repeatedly adds the expert covering the most columns that no
    picked expert covers yet. Ties go to the higher fitness, then to the lower index, so
    the pick is deterministic. Once no candidate adds coverage, the same rule fills the
    remaining places by fitness alone: a fitter expert is the better bet on questions
    outside this matrix.

    Args:
        solved: Bool array of shape ``(n_experts, n_columns)``.
        n: Task force size.
        fitness: Fitness of each expert, length ``n_experts``; finite numbers.
        required: Row indices that must be in the task force, kept first and in order.

    Returns:
        ``min(n, n_experts)`` distinct row indices in pick order: ``required`` first.

    Raises:
        ValueError: If ``n < 1``, ``len(required) > n``, ``required`` repeats or is out
            of range, ``solved`` is not 2-D bool, or ``fitness`` does not have one finite
            value per expert.
    """
    _check_n(n)
    _check_solved(solved)
    n_experts = solved.shape[0]
    if len(fitness) != n_experts:
        raise ValueError(
            f"fitness must have one value per expert: got {len(fitness)} for {n_experts} experts"
        )
    if not all(math.isfinite(f) for f in fitness):
        raise ValueError("fitness values must be finite")
    if len(required) > n:
        raise ValueError(f"{len(required)} required members do not fit a task force of {n}")
    _check_indices(required, n_experts, "required")
    if len(set(required)) != len(required):
        raise ValueError(f"required members must be distinct, got {list(required)}")

    picked = list(required)
    covered = np.zeros(solved.shape[1], dtype=bool)
    for i in picked:
        covered |= solved[i]
    while len(picked) < min(n, n_experts):
        # New columns each candidate would add: shape (n_experts,).
        gains = (solved & ~covered).sum(axis=1)
        taken = set(picked)
        best = max(
            (i for i in range(n_experts) if i not in taken),
            key=lambda i: (gains[i], fitness[i], -i),
        )
        picked.append(best)
        covered |= solved[best]
    return picked


def top_fitness_task_force(fitness: Sequence[float], n: int) -> list[ExpertIndex]:
    """The ``n`` fittest experts, ties by lower index: the baseline greedy must beat.

    Args:
        fitness: Fitness of each expert.
        n: Task force size.

    Returns:
        ``min(n, len(fitness))`` row indices, fittest first.

    Raises:
        ValueError: If ``n < 1``.
    """
    _check_n(n)
    order = sorted(range(len(fitness)), key=lambda i: (-fitness[i], i))
    return order[:n]


def random_task_force(n_experts: int, n: int, rng: random.Random) -> list[ExpertIndex]:
    """``n`` distinct experts drawn uniformly: the floor any selection must clear.

    Args:
        n_experts: Number of experts to draw from.
        n: Task force size.
        rng: Seeded generator, so a comparison can be rerun exactly.

    Returns:
        ``min(n, n_experts)`` distinct row indices in draw order.

    Raises:
        ValueError: If ``n < 1`` or ``n_experts < 0``.
    """
    _check_n(n)
    if n_experts < 0:
        raise ValueError(f"n_experts must be non-negative, got {n_experts}")
    return rng.sample(range(n_experts), min(n, n_experts))
