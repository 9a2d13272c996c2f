"""The curator, task side: admits new tasks through its gates and keeps the pool in shape.

Gates, in order (DESIGN.md section 4, "adapt tasks"): contamination (too close to a
benchmark question); then, for a new or novel task, duplicate (near-identical text:
cosine similarity above ``duplicate_threshold`` to a task ever accepted) and the LLM's
"interestingly new" check against the nearest tasks at or above ``novelty_threshold``.
A harder or easier variant is meant to resemble the task it varies, so its own lineage
(parent and ancestors) is left out of both: it is refused only as an exact copy of its
parent or as near-identical to a task outside its lineage. Every decision has a reason.
"""

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, cast

from chromadb import Where

from acdc.agents.fences import fence
from acdc.agents.schemas import NoveltyCheck
from acdc.agents.scientist import task_json
from acdc.agents.structured import StructuredCaller
from acdc.prompts.loader import Prompt, load_prompt
from acdc.tasks import Task
from acdc.types import TaskId
from acdc.vectorstore.contamination import BenchmarkIndex
from acdc.vectorstore.tasks import Neighbour, TaskIndex, task_text

Gate = Literal["contamination", "duplicate", "interestingly_new", "accepted"]
PROMPTS: dict[str, set[str]] = {"curator_novelty": {"candidate", "neighbours"}}


@dataclass(frozen=True)
class Admission:
    """The curator's decision on one candidate task."""

    task_id: TaskId
    accepted: bool
    gate: Gate
    reason: str
    neighbours: list[tuple[TaskId, float]] = field(default_factory=list)
    tokens: int = 0


@dataclass(frozen=True)
class Retirement:
    """A task leaving the active pool, and why."""

    task_id: TaskId
    reason: str


def same_content(a: Task, b: Task) -> bool:
    """Whether two tasks ask the same questions with the same answers (ids aside)."""

    def content(task: Task) -> list[tuple[str, str, tuple[str, ...]]]:
        return [
            (
                " ".join(i.instruction.split()).lower(),
                (i.reference or "").strip().lower(),
                tuple(i.options or ()),
            )
            for i in task.instances
        ]

    return a.grading == b.grading and content(a) == content(b)


class Curator:
    """Admission gates over the task index, and pool upkeep."""

    def __init__(
        self,
        caller: StructuredCaller,
        index: TaskIndex,
        *,
        novelty_threshold: float,
        neighbours: int,
        duplicate_threshold: float = 0.95,
        benchmarks: BenchmarkIndex | None = None,
        contamination_threshold: float = 0.9,
        prompts_dir: str = "",
    ) -> None:
        self.caller = caller
        self.index = index
        self.novelty_threshold = novelty_threshold
        self.duplicate_threshold = duplicate_threshold
        self.neighbours = neighbours
        self.benchmarks = benchmarks
        self.contamination_threshold = contamination_threshold
        self.prompts: dict[str, Prompt] = {
            name: load_prompt(name, variables, prompts_dir) for name, variables in PROMPTS.items()
        }

    async def admit(
        self, task: Task, *, lineage: Sequence[Task] = (), variant: bool = False
    ) -> Admission:
        """Run the gates; an accepted task is added to the index as active.

        Args:
            task: The candidate.
            lineage: Its parent first, then the parent's ancestors; never compared with it.
            variant: A harder or easier variant of ``lineage[0]``: no LLM novelty check.
        """
        text = task_text(task)
        if self.benchmarks is not None:
            closest = self.benchmarks.closest(text)
            if closest is not None and closest[0] >= self.contamination_threshold:
                similarity, question = closest
                return Admission(
                    task.id,
                    False,
                    "contamination",
                    f"similarity {similarity:.2f} to benchmark question {question[:120]!r}",
                )
        if lineage and same_content(task, lineage[0]):
            return Admission(task.id, False, "duplicate", f"an exact copy of {lineage[0].id}")
        near = self.index.nearest_to_task(task, self.neighbours, _outside(lineage))
        pairs = [(n.task_id, round(n.similarity, 4)) for n in near]
        if near and near[0].similarity > self.duplicate_threshold:
            return Admission(
                task.id,
                False,
                "duplicate",
                f"similarity {near[0].similarity:.2f} to {near[0].task_id} "
                f"(near-identical above {self.duplicate_threshold:.2f})",
                pairs,
            )
        similar = [n for n in near if n.similarity >= self.novelty_threshold]
        reason, tokens = "no task ever accepted is similar", 0
        if variant:
            reason = f"a variant of {lineage[0].id}; not near-identical to any other task"
        elif similar:
            decision = await self._interestingly_new(task, similar, pairs)
            if not decision.accepted:
                return decision
            reason, tokens = decision.reason, decision.tokens
        self.index.upsert(task, status="active")
        return Admission(task.id, True, "accepted", reason, pairs, tokens)

    async def _interestingly_new(
        self, task: Task, similar: Sequence[Neighbour], pairs: list[tuple[TaskId, float]]
    ) -> Admission:
        """The model's verdict on ``task`` against the similar tasks it is shown."""
        shown = "\n\n".join(f"<task>\n{fence(n.document)}\n</task>" for n in similar)
        prompt = self.prompts["curator_novelty"].render(candidate=task_json(task), neighbours=shown)
        outcome = await self.caller.call(NoveltyCheck, prompt)
        if outcome.value is None:
            reason = f"check failed: {outcome.reason}"
            return Admission(task.id, False, "interestingly_new", reason, pairs, outcome.tokens)
        reason = outcome.value.reasoning[:500]
        if not outcome.value.interestingly_new:
            return Admission(task.id, False, "interestingly_new", reason, pairs, outcome.tokens)
        return Admission(task.id, True, "accepted", reason, pairs, outcome.tokens)


def _outside(lineage: Sequence[Task]) -> Where | None:
    """A ChromaDB filter leaving out the lineage's ids (None when there is none)."""
    if not lineage:
        return None
    return cast(Where, {"id": {"$nin": [t.id for t in lineage]}})


def impossible_tasks(active: Sequence[Task], pass_rates: Mapping[TaskId, float]) -> list[TaskId]:
    """Active tasks no archive member passes, unless that is every evaluated task.

    ``pass_rates`` holds the share of the archive passing each fully evaluated task;
    a task not evaluated yet is never impossible, and does not count as passed either.
    When no evaluated task is passed, none goes: the pool says nothing yet about which
    tasks are too hard, only that the population is weak, so all stay and are drawn as
    parents of easier variants (a weak seed would otherwise lose its whole pool at the
    first adaptation, as the smoke run did with the 135M seed).
    """
    evaluated = [t.id for t in active if t.id in pass_rates]
    impossible = [task_id for task_id in evaluated if pass_rates[task_id] <= 0.0]
    return [] if len(impossible) == len(evaluated) else impossible


def draw_parents(
    active: Sequence[Task], pass_rates: Mapping[TaskId, float], count: int, rng: random.Random
) -> list[Task]:
    """``count`` adaptation parents drawn with replacement among tasks with pass rate > 0.

    Only when no active task is passed by anyone are the evaluated ones drawn (to be made
    easier: "easier only when nothing else is left"); unevaluated tasks never are.
    """
    passed = [t for t in active if pass_rates.get(t.id, 0.0) > 0.0]
    parents = passed or [t for t in active if t.id in pass_rates]
    return [rng.choice(parents) for _ in range(count)] if parents else []


def over_cap(active: Sequence[Task], pool_max: int) -> list[Retirement]:
    """The oldest active tasks beyond ``pool_max``; ties in age go by id (deterministic)."""
    oldest = sorted(active, key=lambda t: (t.generation, t.id))
    return [
        Retirement(t.id, f"cap: oldest beyond the pool cap of {pool_max}")
        for t in oldest[: max(0, len(oldest) - pool_max)]
    ]
