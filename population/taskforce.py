"""Choose a task force from a run: N experts that together pass the most tasks.

AC/DC ends with a task force, not one best expert (DESIGN.md section 4). The evidence is
the run's skill matrix: every candidate (every expert with evaluations, and the seed)
against every task ever active, an expert passing a task when its mean instance score
reaches ``pass_threshold``. The matrix should be *complete* (``graphs/completion.py``
evaluates the missing triples first); a cell still unevaluated is *masked*: it is not a
pass, and it is not a fail either, since fitness is the share of the *evaluated* tasks
passed. Greedy maximum coverage picks the N members, ties by fitness, optionally always
keeping named experts (the paper keeps the instruct seed).

The same N gets the honest baselines: the N fittest experts, N random experts (the
first N of a seeded permutation, so a smaller N is a subset and costs no new answers),
and N temperature samples of the seed. The last needs generation, so here it is only
its recipe: the seed N times and a temperature above 0.

The choice is saved as ``<run>/taskforce.json``, so serving and evaluation use the same
members and a reader can see why they were picked.
"""

import datetime as dt
import random
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from acdc import atomic
from acdc.population.archive import fitness, known_matrix, skill_matrix
from acdc.population.coverage import coverage, greedy_task_force, top_fitness_task_force
from acdc.rundir import RunDir
from acdc.taskpool import TaskPool
from acdc.types import ExpertId, TaskId


@dataclass(frozen=True)
class RunSkills:
    """A run's skill matrix over every task ever active.

    Attributes:
        experts: Experts with evaluations, in order of their first evaluation (rows).
        tasks: Every task ever admitted, active first (columns).
        solved: Bool array of shape ``(len(experts), len(tasks))``; False where masked.
        fitness: Share of its *evaluated* tasks each expert passes, shape ``(len(experts),)``.
        threshold: Mean instance score at which an expert passes a task.
        known: Bool array like ``solved``: True where every scored instance of the task
            was evaluated for the expert; None means all (a complete matrix).
    """

    experts: list[ExpertId]
    tasks: list[TaskId]
    solved: np.ndarray
    fitness: np.ndarray
    threshold: float
    known: np.ndarray | None = None

    @property
    def missing(self) -> int:
        """Cells not evaluated (masked)."""
        return 0 if self.known is None else int((~self.known).sum())

    def row(self, expert_id: ExpertId) -> int:
        """Row of ``expert_id``.

        Raises:
            KeyError: The expert has no evaluations in this run.
        """
        try:
            return self.experts.index(expert_id)
        except ValueError:
            raise KeyError(f"expert {expert_id!r} has no evaluations in this run") from None


def skill_cells(
    run_dir: Path, instances_per_task: int = 0, candidates: Sequence[ExpertId] = ()
) -> tuple[list[ExpertId], dict[TaskId, list[str]]]:
    """Rows and columns of the run's skill matrix: who is a candidate, what each task asks.

    Returns:
        The candidates (experts with evaluations in order of their first one, then
        ``candidates`` not among them, e.g. the seed) and, for every task ever active,
        the ids of its scored instances (the first ``instances_per_task``; 0 = all).
    """
    pool = TaskPool.open(run_dir)
    count = instances_per_task or None
    instances = {t: [i.id for i in pool.get(t).instances[:count]] for t in pool.ever()}
    store = RunDir(run_dir, read_only=True).evaluations()
    evaluated = [record.expert_id for record in store.records()]
    return list(dict.fromkeys([*evaluated, *candidates])), instances


def run_skills(
    run_dir: Path,
    threshold: float,
    instances_per_task: int = 0,
    candidates: Sequence[ExpertId] = (),
    leave_out: Collection[TaskId] = (),
) -> RunSkills:
    """The skill matrix of the run in ``run_dir`` (see the module for the pass rule).

    Args:
        run_dir: The run folder.
        threshold: Mean instance score at which an expert passes a task.
        instances_per_task: The run's setting: only the first this many instances of
            each task were scored (0 = all).
        candidates: Experts that are rows even without evaluations (the seed).
        leave_out: Tasks that are no columns (e.g. rubric tasks an uncalibrated judge
            graded).
    """
    experts, instances = skill_cells(run_dir, instances_per_task, candidates)
    for task_id in leave_out:
        instances.pop(task_id, None)
    task_ids = list(instances)
    store = RunDir(run_dir, read_only=True).evaluations()
    scores = store.mean_scores(experts, instances)
    solved = skill_matrix(scores, experts, task_ids, threshold)
    known = known_matrix(scores, experts, task_ids)
    return RunSkills(experts, task_ids, solved, fitness(solved, known), threshold, known)


@dataclass(frozen=True)
class TaskForce:
    """One way of answering with N experts.

    Attributes:
        name: ``greedy`` (the selected one), ``top_fitness``, ``random`` or ``seed_samples``.
        members: Expert ids, one per answer (``seed_samples`` repeats the seed).
        temperature: Sampling temperature of the members' answers.
        coverage: Share of the run's tasks some member passes; None for ``seed_samples``,
            whose temperature samples the run never evaluated.
    """

    name: str
    members: list[ExpertId]
    temperature: float
    coverage: float | None


@dataclass(frozen=True)
class TaskForcePlan:
    """The selected task force of size ``n`` and its baselines of the same size."""

    n: int
    threshold: float
    experts: int
    tasks: int
    selected: TaskForce
    baselines: list[TaskForce]
    missing_cells: int = 0
    """Cells of the skill matrix never evaluated (masked) when the plan was made."""

    def task_forces(self) -> list[TaskForce]:
        """The selected task force first, then the baselines."""
        return [self.selected, *self.baselines]

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as saved in ``taskforce.json``."""
        return asdict(self)


def choose_task_forces(
    skills: RunSkills,
    n: int,
    *,
    seed: ExpertId,
    required: Sequence[ExpertId] = (),
    random_seed: int = 0,
    temperature: float = 0.0,
    seed_temperature: float = 0.7,
) -> TaskForcePlan:
    """Greedy max-coverage task force of ``n`` experts and its three baselines.

    Args:
        skills: The run's skill matrix.
        n: Task force size; fewer members when the run has fewer experts.
        seed: Expert sampled N times for the ``seed_samples`` baseline.
        required: Experts the selected task force always holds, first and in order.
        random_seed: Seed of the random baseline's permutation.
        temperature: Members' sampling temperature (the selected and the first two
            baselines).
        seed_temperature: Temperature of the seed samples; must be above 0.

    Raises:
        ValueError: If the run has no evaluated experts, ``n < 1``, ``seed_temperature``
            is not positive, or a required expert has no evaluations.
    """
    if not skills.experts:
        raise ValueError("the run has no evaluated experts: run `acdc run` on it first")
    if seed_temperature <= 0:
        raise ValueError(f"seed samples need a temperature above 0, got {seed_temperature}")
    try:
        required_rows = [skills.row(expert_id) for expert_id in required]
    except KeyError as err:
        raise ValueError(f"required member: {err.args[0]}") from None
    fit = [float(f) for f in skills.fitness]
    greedy = greedy_task_force(skills.solved, n, fit, required_rows)
    top = top_fitness_task_force(fit, n)
    permutation = random.Random(random_seed).sample(range(len(skills.experts)), len(skills.experts))
    drawn = permutation[:n]

    def force(name: str, rows: list[int]) -> TaskForce:
        members = [skills.experts[row] for row in rows]
        return TaskForce(name, members, temperature, coverage(skills.solved, rows, skills.known))

    return TaskForcePlan(
        n=n,
        threshold=skills.threshold,
        experts=len(skills.experts),
        tasks=len(skills.tasks),
        selected=force("greedy", greedy),
        baselines=[
            force("top_fitness", top),
            force("random", drawn),
            TaskForce("seed_samples", [seed] * n, seed_temperature, None),
        ],
        missing_cells=skills.missing,
    )


def route(skills: RunSkills, members: Sequence[ExpertId], nearest: Sequence[TaskId]) -> int:
    """The member (index into ``members``) whose skills cover the tasks nearest a question.

    Members are compared on the nearest task first: one that passes it beats one that
    does not; a tie goes to the next nearest task, and so on, then to the fitter member,
    then to the earlier one. Members without evaluations pass nothing, and tasks the
    matrix does not hold are skipped.

    Args:
        skills: The run's skill matrix.
        members: The task force.
        nearest: Task ids, nearest to the question first.

    Raises:
        ValueError: If ``members`` is empty.
    """
    if not members:
        raise ValueError("no members to route to")
    columns = [skills.tasks.index(t) for t in nearest if t in skills.tasks]

    def strength(position: int) -> tuple[tuple[bool, ...], float, int]:
        expert_id = members[position]
        if expert_id not in skills.experts:
            return (False,) * len(columns), 0.0, -position
        row = skills.experts.index(expert_id)
        passes = tuple(bool(skills.solved[row, column]) for column in columns)
        return passes, float(skills.fitness[row]), -position

    return max(range(len(members)), key=strength)


def save_plan(run_dir: Path, plan: TaskForcePlan) -> Path:
    """Write ``plan`` to ``<run_dir>/taskforce.json`` atomically; returns the path."""
    path = RunDir(run_dir, read_only=True).taskforce_file
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    atomic.write_json(path, {**plan.to_dict(), "created_at": created})
    return path
