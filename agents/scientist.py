"""The task-scientist: writes new tasks and adapts existing ones, then checks its work."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from acdc.agents.fences import fence_json
from acdc.agents.schemas import TaskDraft, draft_to_task, task_to_draft
from acdc.agents.structured import Outcome, StructuredCaller
from acdc.prompts.loader import Prompt, load_prompt
from acdc.tasks import Task

AdaptKind = Literal["harder", "easier", "novel_related", "novel_unrelated"]
"""What an adaptation asks for. Both novel kinds make a task of adaptation ``novel``:
a related one from the novel prompt (a neighbouring skill of its parent), an unrelated
one from the create prompt (the parent shown only as something to differ from)."""
ADAPTATION: dict[AdaptKind, Literal["harder", "easier", "novel"]] = {
    "harder": "harder",
    "easier": "easier",
    "novel_related": "novel",
    "novel_unrelated": "novel",
}
"""The ``adaptation`` of the task each kind of request makes."""
PROMPTS: dict[str, set[str]] = {
    "scientist_create": {"pool_summary", "examples"},
    "scientist_adapt_harder": {"task", "pass_rate"},
    "scientist_adapt_easier": {"task", "pass_rate"},
    "scientist_adapt_novel": {"task", "pass_rate"},
    "scientist_reflect": {"task"},
}


@dataclass(frozen=True)
class Proposal:
    """A proposed task, or why the scientist produced none."""

    task: Task | None
    reason: str
    reflections: int
    tokens: int


def task_json(task: Task) -> str:
    """The task as the roles see it: its draft fields as indented JSON, fenced.

    Task fields are model-written, so the JSON is made safe to quote in a prompt's tags
    (:func:`acdc.agents.fences.fence_json`); it still parses to the same strings.
    """
    return fence_json(task_to_draft(task).model_dump(exclude_none=True))


class Scientist:
    """Proposes tasks with one role model; every failure comes back as a reason."""

    def __init__(
        self,
        caller: StructuredCaller,
        *,
        reflection_rounds: int,
        prompts_dir: str = "",
    ) -> None:
        self.caller = caller
        self.reflection_rounds = reflection_rounds
        self.prompts: dict[str, Prompt] = {
            name: load_prompt(name, variables, prompts_dir) for name, variables in PROMPTS.items()
        }

    async def create(
        self, *, pool_summary: str, examples: Sequence[Task], generation: int
    ) -> Proposal:
        """A brand-new task unlike ``examples`` (similar tasks from the vector store)."""
        prompt = self.prompts["scientist_create"].render(
            pool_summary=pool_summary or "(the pool is empty)",
            examples="\n\n".join(task_json(t) for t in examples) or "(none yet)",
        )
        outcome = await self.caller.call(TaskDraft, prompt)
        return await self._finish(outcome, generation=generation, adaptation="create", parent=None)

    async def adapt(
        self,
        task: Task,
        *,
        kind: AdaptKind,
        pass_rate: float,
        generation: int,
        pool_summary: str = "",
    ) -> Proposal:
        """A harder, easier or novel task from ``task``, given its pass rate in [0, 1]."""
        if kind == "novel_unrelated":
            prompt = self.prompts["scientist_create"].render(
                pool_summary=pool_summary or f"- {task.capability}", examples=task_json(task)
            )
        else:
            name = "novel" if kind == "novel_related" else kind
            prompt = self.prompts[f"scientist_adapt_{name}"].render(
                task=task_json(task), pass_rate=f"{pass_rate:.0%}"
            )
        outcome = await self.caller.call(TaskDraft, prompt)
        return await self._finish(
            outcome, generation=generation, adaptation=ADAPTATION[kind], parent=task.id
        )

    async def _finish(
        self,
        outcome: Outcome[TaskDraft],
        *,
        generation: int,
        adaptation: Literal["create", "harder", "easier", "novel"],
        parent: str | None,
    ) -> Proposal:
        tokens = outcome.tokens
        if outcome.value is None:
            return Proposal(None, outcome.reason, 0, tokens)
        draft, rounds = outcome.value, 0
        for _ in range(self.reflection_rounds):
            prompt = self.prompts["scientist_reflect"].render(
                task=fence_json(draft.model_dump(exclude_none=True))
            )
            revised = await self.caller.call(TaskDraft, prompt)
            tokens += revised.tokens
            rounds += 1
            if revised.value is None:
                break  # keep the last good draft; a failed review is not a failed task
            draft = revised.value
        try:
            task = draft_to_task(
                draft, generation=generation, adaptation=adaptation, parent_id=parent
            )
        except ValueError as err:
            return Proposal(None, str(err), rounds, tokens)
        return Proposal(task, "", rounds, tokens)
