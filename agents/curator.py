"""The curator, task side: admits new tasks through its gates and keeps the pool in shape.

Gates, in order: contamination (too close to a benchmark question), duplicate (cosine
similarity to any task ever accepted above the threshold), then the LLM's "interestingly
new" check against the nearest neighbours. Every decision carries its reason.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from acdc.agents.schemas import NoveltyCheck
from acdc.agents.scientist import task_json
from acdc.agents.structured import StructuredCaller
from acdc.prompts.loader import Prompt, load_prompt
from acdc.tasks import Task
from acdc.types import TaskId
from acdc.vectorstore.contamination import BenchmarkIndex
from acdc.vectorstore.tasks import TaskIndex, task_text

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


class Curator:
    """Admission gates over the task index, and pool upkeep."""

    def __init__(
        self,
        caller: StructuredCaller,
        index: TaskIndex,
        *,
        novelty_threshold: float,
        neighbours: int,
        benchmarks: BenchmarkIndex | None = None,
        contamination_threshold: float = 0.9,
        prompts_dir: str = "",
    ) -> None:
        self.caller = caller
        self.index = index
        self.novelty_threshold = novelty_threshold
        self.neighbours = neighbours
        self.benchmarks = benchmarks
        self.contamination_threshold = contamination_threshold
        self.prompts: dict[str, Prompt] = {
            name: load_prompt(name, variables, prompts_dir) for name, variables in PROMPTS.items()
        }

    async def admit(self, task: Task) -> Admission:
        """Run the gates; an accepted task is added to the index as active."""
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
        near = self.index.nearest_to_task(task, self.neighbours)
        pairs = [(n.task_id, round(n.similarity, 4)) for n in near]
        if near and near[0].similarity > self.novelty_threshold:
            return Admission(
                task.id,
                False,
                "duplicate",
                f"similarity {near[0].similarity:.2f} to {near[0].task_id} "
                f"(threshold {self.novelty_threshold:.2f})",
                pairs,
            )
        if near:
            shown = "\n\n".join(f"<task>\n{n.document}\n</task>" for n in near)
            prompt = self.prompts["curator_novelty"].render(
                candidate=task_json(task), neighbours=shown
            )
            outcome = await self.caller.call(NoveltyCheck, prompt)
            if outcome.value is None:
                return Admission(
                    task.id,
                    False,
                    "interestingly_new",
                    f"check failed: {outcome.reason}",
                    pairs,
                    outcome.tokens,
                )
            if not outcome.value.interestingly_new:
                return Admission(
                    task.id,
                    False,
                    "interestingly_new",
                    outcome.value.reasoning[:500],
                    pairs,
                    outcome.tokens,
                )
            reason, tokens = outcome.value.reasoning[:500], outcome.tokens
        else:
            reason, tokens = "the pool is empty", 0
        self.index.upsert(task, status="active")
        return Admission(task.id, True, "accepted", reason, pairs, tokens)


def plan_retirements(
    active: Sequence[Task], pass_rates: Mapping[TaskId, float], pool_max: int
) -> list[Retirement]:
    """Tasks to retire: solved by nobody, solved by everybody, then the oldest over the cap.

    ``pass_rates`` holds the share of the archive passing each evaluated task; tasks not
    yet evaluated are kept. Ties in age go by id, so the plan is deterministic.
    """
    retire: list[Retirement] = []
    for task in active:
        rate = pass_rates.get(task.id)
        if rate is None:
            continue
        if rate <= 0.0:
            retire.append(Retirement(task.id, "solved by no expert (impossible or broken)"))
        elif rate >= 1.0:
            retire.append(Retirement(task.id, "solved by every expert (no longer informative)"))
    gone = {r.task_id for r in retire}
    remaining = sorted((t for t in active if t.id not in gone), key=lambda t: (t.generation, t.id))
    for task in remaining[: max(0, len(remaining) - pool_max)]:
        retire.append(Retirement(task.id, f"oldest beyond the pool cap of {pool_max}"))
    return retire
