"""Skill vectors, fitness and the model archive's survivor selection.

After each generation the archive must shrink back to a fixed size. Keeping only the
fittest experts collapses the population onto the skills that are already common, so
AC/DC keeps experts for what they can do that their fitter neighbours cannot: Dominated
Novelty Search (DNS) on skill vectors. An expert that solves nothing its fitter
neighbours miss scores 0 and drops out; a weak expert with a unique skill survives.

Everything here is a pure function over plain data (numpy arrays of shape
``(n_experts, n_tasks)``); scoring the experts on tasks happens elsewhere.

Tie rule among equally fit experts: expert ``y`` counts as fitter than ``x`` when it
passes more tasks, or passes as many and comes earlier in the input order. So the first
of the fittest experts is the only undominated one, and a later equal expert is scored
against the earlier equal ones.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias, get_args

import numpy as np

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
        scores: Mean instance score in [0, 1] of each (expert, task); a missing pair
            counts as not passed, so an unevaluated expert never looks skilled.
        experts: Row order.
        tasks: Column order (the active tasks).
        threshold: An expert passes a task when its mean score is ``>= threshold``.

    Returns:
        Bool array of shape ``(n_experts, n_tasks)``.
    """
    skills = np.zeros((len(experts), len(tasks)), dtype=bool)
    for i, expert in enumerate(experts):
        for j, task in enumerate(tasks):
            score = scores.get((expert, task))
            skills[i, j] = score is not None and score >= threshold
    return skills


def fitness(skills: np.ndarray) -> np.ndarray:
    """Fraction of tasks each expert passes: ``fitness[i] = skills[i].sum() / n_tasks``.

    Args:
        skills: Bool array of shape ``(n_experts, n_tasks)``.

    Returns:
        Float array of shape ``(n_experts,)``; all 0.0 when there are no tasks.
    """
    n_experts, n_tasks = skills.shape
    if n_tasks == 0:
        return np.zeros(n_experts)
    return np.asarray(skills.sum(axis=1) / n_tasks, dtype=float)


def difficulty_weights(skills: np.ndarray) -> np.ndarray:
    """Share of the experts failing each task: ``d[t] = (~skills[:, t]).mean()``.

    A skill few experts have weighs more in DNS than one almost everyone has.

    Args:
        skills: Bool array of shape ``(n_experts, n_tasks)``.

    Returns:
        Float array of shape ``(n_tasks,)`` in [0, 1]; all 0.0 when there are no experts.
    """
    n_experts, n_tasks = skills.shape
    if n_experts == 0:
        return np.zeros(n_tasks)
    return np.asarray((~skills).sum(axis=0) / n_experts, dtype=float)


def dns_scores(skills: np.ndarray, k: int = 3, fittest_score: float = 999.0) -> np.ndarray:
    """Dominated Novelty Search score of each expert.

    ``F(x)`` is the set of experts fitter than ``x`` (see the module's tie rule). For
    ``y`` in ``F(x)``::

        score(x, y) = 100 * sum(d[t] for t that x passes and y fails) / sum(d)

    with ``d`` from :func:`difficulty_weights` over all rows of ``skills``, and 0 when
    ``sum(d) == 0`` (every expert passes every task). ``novelty(x)`` is the mean of the
    ``k`` smallest ``score(x, y)`` (of all of them when ``|F(x)| < k``), and
    ``fittest_score`` when ``F(x)`` is empty.

    Args:
        skills: Bool array of shape ``(n_experts, n_tasks)``.
        k: How many of the closest fitter experts the novelty averages over.
        fittest_score: Score of an undominated expert, high so it always survives.

    Returns:
        Float array of shape ``(n_experts,)``.

    Raises:
        ValueError: If ``k < 1``.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    weights = difficulty_weights(skills)
    total = weights.sum()
    # gain[x, y] = sum of d[t] over tasks t that x passes and y fails.
    gain = (skills * weights) @ (~skills).T.astype(float)
    pair_scores = 100 * gain / total if total > 0 else np.zeros_like(gain)

    passed = skills.sum(axis=1)
    novelty = np.empty(len(skills))
    for x in range(len(skills)):
        fitter = [
            y
            for y in range(len(skills))
            if passed[y] > passed[x] or (passed[y] == passed[x] and y < x)
        ]
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
        fitness: Fitness of every candidate.
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

    Returns:
        The survivors and every candidate's score and fitness.

    Raises:
        ValueError: On an unknown method, ``size < 1``, duplicate ids, or a ``skills``
            array that is not 2-D bool with one row per expert.
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

    fit = fitness(skills)
    score = dns_scores(skills, k=k) if method == "dns" else fit
    ranking = sorted(range(len(experts)), key=lambda i: (-score[i], -fit[i], i))
    return Selection(
        survivors=[experts[i] for i in ranking[:size]],
        scores={e: float(s) for e, s in zip(experts, score, strict=True)},
        fitness={e: float(f) for e, f in zip(experts, fit, strict=True)},
    )
