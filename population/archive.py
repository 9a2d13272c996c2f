"""Skill vectors, fitness and the model archive's survivor selection.

After each generation the archive must shrink back to a fixed size. Keeping only the
fittest experts collapses the population onto the skills that are already common, so
AC/DC keeps experts for what they can do that their fitter neighbours cannot: Dominated
Novelty Search (DNS) on skill vectors. An expert that solves nothing its fitter
neighbours miss scores 0 and drops out; a weak expert with a unique skill survives.

Everything here is a pure function over plain data (numpy arrays of shape
``(n_experts, n_tasks)``); scoring the experts on tasks happens elsewhere.

A cell never evaluated (a transient failure not retried yet, a task added after the
expert's evaluation) is *masked*, never read as a failure: beside the bool ``skills``
matrix every function takes a ``known`` mask of the same shape, True where the cell was
evaluated (None: every cell was). Fitness is the share of the *evaluated* tasks passed,
a task's difficulty counts only the experts evaluated on it, and DNS compares two
experts only on the tasks both were evaluated on. An expert scored on half the pool is
then neither punished for the half it never saw nor credited with a "unique" skill on
a task its rival never saw.

Tie rule among equally fit experts: expert ``y`` counts as fitter than ``x`` when its
fitness is higher, or equal and it comes earlier in the input order. So the first of
the fittest experts is the only undominated one, and a later equal expert is scored
against the earlier equal ones.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias, get_args

import numpy as np

from acdc.population.pass_rule import passes
from acdc.types import ExpertId, TaskId

SelectionMethod: TypeAlias = Literal["dns", "top_fitness"]
METHODS: tuple[str, ...] = get_args(SelectionMethod)


def skill_matrix(
    scores: Mapping[tuple[ExpertId, TaskId], float],
    experts: Sequence[ExpertId],
    tasks: Sequence[TaskId],
    threshold: float = 0.5,
) -> np.ndarray:
    """Skill vectors of ``experts`` on ``tasks``, one row per expert.

    Args:
        scores: Mean instance score in [0, 1] of each (expert, task); a missing pair is
            not a pass here, and :func:`known_matrix` masks it.
        experts: Row order.
        tasks: Column order (the active tasks).
        threshold: An expert passes a task when its mean score reaches it
            (:func:`~acdc.population.pass_rule.passes`).

    Returns:
        Bool array of shape ``(n_experts, n_tasks)``.
    """
    skills = np.zeros((len(experts), len(tasks)), dtype=bool)
    for i, expert in enumerate(experts):
        for j, task in enumerate(tasks):
            skills[i, j] = passes(scores.get((expert, task)), threshold)
    return skills


def known_matrix(
    scores: Mapping[tuple[ExpertId, TaskId], object],
    experts: Sequence[ExpertId],
    tasks: Sequence[TaskId],
) -> np.ndarray:
    """Which cells of :func:`skill_matrix` were evaluated: ``known[i, j] = (e_i, t_j) in scores``.

    Returns:
        Bool array of shape ``(n_experts, n_tasks)``.
    """
    known = np.zeros((len(experts), len(tasks)), dtype=bool)
    for i, expert in enumerate(experts):
        for j, task in enumerate(tasks):
            known[i, j] = (expert, task) in scores
    return known


def _mask(skills: np.ndarray, known: np.ndarray | None) -> np.ndarray:
    """``known`` checked against ``skills``, or all True when None (a complete matrix)."""
    if known is None:
        return np.ones(skills.shape, dtype=bool)
    if known.shape != skills.shape or known.dtype != bool:
        raise ValueError(
            f"known must be a bool array of shape {skills.shape}, got {known.dtype} {known.shape}"
        )
    return known


def fitness(skills: np.ndarray, known: np.ndarray | None = None) -> np.ndarray:
    """Share of its evaluated tasks each expert passes.

    ``fitness[i] = (skills[i] & known[i]).sum() / known[i].sum()``, 0.0 for an expert
    with no evaluated task.

    Args:
        skills: Bool array of shape ``(n_experts, n_tasks)``.
        known: Bool array of the same shape, True where evaluated; None means all.

    Returns:
        Float array of shape ``(n_experts,)``; all 0.0 when there are no tasks.
    """
    known = _mask(skills, known)
    evaluated = known.sum(axis=1)
    passed = (skills & known).sum(axis=1)
    return np.asarray(np.where(evaluated > 0, passed / np.maximum(evaluated, 1), 0.0), dtype=float)


def difficulty_weights(skills: np.ndarray, known: np.ndarray | None = None) -> np.ndarray:
    """Share of the experts evaluated on each task that fail it.

    ``d[t] = (~skills[:, t] & known[:, t]).sum() / known[:, t].sum()``, 0.0 for a task
    nobody was evaluated on. A skill few experts have weighs more in DNS than one almost
    everyone has.

    Args:
        skills: Bool array of shape ``(n_experts, n_tasks)``.
        known: Bool array of the same shape, True where evaluated; None means all.

    Returns:
        Float array of shape ``(n_tasks,)`` in [0, 1]; all 0.0 when there are no experts.
    """
    known = _mask(skills, known)
    evaluated = known.sum(axis=0)
    failed = (~skills & known).sum(axis=0)
    return np.asarray(np.where(evaluated > 0, failed / np.maximum(evaluated, 1), 0.0), dtype=float)


def dns_scores(
    skills: np.ndarray,
    k: int = 3,
    fittest_score: float = 999.0,
    known: np.ndarray | None = None,
) -> np.ndarray:
    """Dominated Novelty Search score of each expert.

    ``F(x)`` is the set of experts fitter than ``x`` by :func:`fitness` (see the
    module's tie rule). With ``T(x, y)`` the tasks evaluated for both ``x`` and ``y``,
    for ``y`` in ``F(x)``::

        score(x, y) = 100 * sum(d[t] for t in T(x, y) that x passes and y fails)
                          / sum(d[t] for t in T(x, y))

    with ``d`` from :func:`difficulty_weights` over all rows of ``skills``, and 0 when
    the denominator is 0 (no common task, or every expert passes all of them). With a
    complete matrix ``T(x, y)`` is every task. ``novelty(x)`` is the mean of the ``k``
    smallest ``score(x, y)`` (of all of them when ``|F(x)| < k``), and ``fittest_score``
    when ``F(x)`` is empty.

    Args:
        skills: Bool array of shape ``(n_experts, n_tasks)``.
        k: How many of the closest fitter experts the novelty averages over.
        fittest_score: Score of an undominated expert, high so it always survives.
        known: Bool array of the same shape, True where evaluated; None means all.

    Returns:
        Float array of shape ``(n_experts,)``.

    Raises:
        ValueError: If ``k < 1`` or ``known`` does not match ``skills``.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    known = _mask(skills, known)
    weights = difficulty_weights(skills, known)
    passes = (skills & known).astype(float)
    fails = (~skills & known).astype(float)
    # gain[x, y]: sum of d[t] over tasks t that x passes and y fails, both evaluated.
    gain = (passes * weights) @ fails.T
    # common[x, y]: sum of d[t] over the tasks evaluated for both x and y.
    common = (known * weights) @ known.T.astype(float)
    pair_scores = np.divide(100 * gain, common, out=np.zeros_like(gain), where=common > 0)

    fit = fitness(skills, known)
    novelty = np.empty(len(skills))
    for x in range(len(skills)):
        fitter = [y for y in range(len(skills)) if fit[y] > fit[x] or (fit[y] == fit[x] and y < x)]
        if not fitter:
            novelty[x] = fittest_score
        else:
            closest = np.sort(pair_scores[x, fitter])[:k]
            novelty[x] = closest.mean()
    return novelty


@dataclass(frozen=True)
class Selection:
    """Outcome of one survivor selection.

    Attributes:
        survivors: Kept experts, best first.
        scores: Ranking score of every candidate: novelty for ``dns``, fitness for
            ``top_fitness``.
        fitness: Fitness of every candidate (share of its evaluated tasks passed).
    """

    survivors: list[ExpertId]
    scores: dict[ExpertId, float]
    fitness: dict[ExpertId, float]


def select_survivors(
    experts: Sequence[ExpertId],
    skills: np.ndarray,
    size: int,
    method: SelectionMethod = "dns",
    k: int = 3,
    known: np.ndarray | None = None,
) -> Selection:
    """Keep the ``size`` best experts of the archive.

    Experts are ranked by score descending, ties by fitness descending, then by input
    order; the first ``size`` survive (all of them when there are at most ``size``).
    With ``top_fitness`` the score is the fitness itself.

    Args:
        experts: Candidate ids, one per row of ``skills``.
        skills: Bool array of shape ``(len(experts), n_tasks)``.
        size: Archive size.
        method: ``"dns"`` (Dominated Novelty Search) or ``"top_fitness"``.
        k: Neighbours averaged by DNS; unused by ``top_fitness``.
        known: Bool array like ``skills``, True where evaluated; None means all.

    Returns:
        The survivors and every candidate's score and fitness.

    Raises:
        ValueError: On an unknown method, ``size < 1``, duplicate ids, or a ``skills``
            array that is not 2-D bool with one row per expert, or a ``known`` unlike it.
    """
    if method not in METHODS:
        raise ValueError(f"unknown selection method {method!r}; expected one of {METHODS}")
    if size < 1:
        raise ValueError(f"archive size must be at least 1, got {size}")
    if len(set(experts)) != len(experts):
        raise ValueError("expert ids must be unique")
    if skills.ndim != 2 or skills.dtype != bool or skills.shape[0] != len(experts):
        raise ValueError(
            f"skills must be a bool array of shape ({len(experts)}, n_tasks), "
            f"got {skills.dtype} {skills.shape}"
        )
    known = _mask(skills, known)

    fit = fitness(skills, known)
    score = dns_scores(skills, k=k, known=known) if method == "dns" else fit
    ranking = sorted(range(len(experts)), key=lambda i: (-score[i], -fit[i], i))
    return Selection(
        survivors=[experts[i] for i in ranking[:size]],
        scores={e: float(s) for e, s in zip(experts, score, strict=True)},
        fitness={e: float(f) for e, f in zip(experts, fit, strict=True)},
    )
