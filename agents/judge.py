"""The judge: grades responses against a rubric, reviews new tasks, picks the best answer.

Subject text, task fields and questions are untrusted: each is quoted in tags the
prompt declares to be data, through :mod:`acdc.agents.fences` (normalised, ``<`` and
``>`` and their lookalikes escaped, every field capped after escaping), so no spelling
of a tag inside it can end the fence early and no field can bloat the prompt.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass

from acdc.agents.fences import RESPONSE_CHARS, fence
from acdc.agents.schemas import TaskReview, Verdict, selection_schema
from acdc.agents.scientist import task_json
from acdc.agents.structured import StructuredCaller
from acdc.prompts.loader import Prompt, load_prompt
from acdc.tasks import LETTERS, Task, TaskInstance

PROMPTS: dict[str, set[str]] = {
    "judge_grade": {"task_name", "description", "rubric", "instruction", "reference", "response"},
    "judge_validate": {"task"},
    "judge_select": {"question", "candidates"},
}


def fence_safe(text: str) -> str:
    """Untrusted text ready to quote in a fence (no cap); see :func:`fences.fence`."""
    return fence(text, 0)


@dataclass(frozen=True)
class Grade:
    """A judge's score for one response, or why there is none (score None)."""

    score: float | None
    reasoning: str
    reason: str
    tokens: int
    transient: bool = False
    """No score because the judge was busy or unreachable: grade again later."""


@dataclass(frozen=True)
class Review:
    """Whether a new task may join the pool, and why."""

    ok: bool
    reason: str
    tokens: int


@dataclass(frozen=True)
class Choice:
    """The index (into the caller's list) of the best answer, or None with the reason."""

    index: int | None
    reasoning: str
    reason: str
    tokens: int


class Judge:
    """Grading, task review and best-of-N selection with one role model."""

    def __init__(
        self, caller: StructuredCaller, prompts_dir: str = "", response_chars: int = RESPONSE_CHARS
    ) -> None:
        self.caller = caller
        self.response_chars = response_chars
        self.prompts: dict[str, Prompt] = {
            name: load_prompt(name, variables, prompts_dir) for name, variables in PROMPTS.items()
        }

    def grade_prompt(self, task: Task, instance: TaskInstance, response: str) -> str:
        """The exact prompt sent to grade ``response``."""
        instruction = instance.instruction
        if instance.options:
            instruction += "\n" + "\n".join(
                f"{LETTERS[i]}. {option}" for i, option in enumerate(instance.options)
            )
        return self.prompts["judge_grade"].render(
            task_name=fence(task.name),
            description=fence(task.description),
            rubric=fence(task.rubric or "Correct and complete answers score 1."),
            instruction=fence(instruction),
            reference=fence(instance.reference or "(no reference answer; use the rubric)"),
            response=fence(response, self.response_chars),
        )

    async def grade(self, task: Task, instance: TaskInstance, response: str) -> Grade:
        """Reasoning, then a score in [0, 1]."""
        outcome = await self.caller.call(Verdict, self.grade_prompt(task, instance, response))
        if outcome.value is None:
            return Grade(None, "", outcome.reason, outcome.tokens, outcome.transient)
        verdict = outcome.value
        return Grade(verdict.score, verdict.reasoning, "", outcome.tokens)

    async def validate(self, task: Task) -> Review:
        """Is the task well-formed and solvable, and are its references right?"""
        prompt = self.prompts["judge_validate"].render(task=task_json(task))
        outcome = await self.caller.call(TaskReview, prompt)
        if outcome.value is None:
            return Review(False, f"review failed: {outcome.reason}", outcome.tokens)
        review = outcome.value
        failed = [
            name
            for name, ok in (
                ("not well-formed", review.well_formed),
                ("not solvable", review.solvable),
                ("wrong reference answers", review.references_correct),
            )
            if not ok
        ]
        reason = "; ".join(failed) + f" ({review.reasoning[:300]})" if failed else ""
        return Review(not failed, reason, outcome.tokens)

    def select_prompt(self, question: str, answers: Sequence[str], order: Sequence[int]) -> str:
        """The selection prompt with answers shown in ``order`` (a permutation)."""
        candidates = "\n\n".join(
            f"<candidate {shown}>\n{fence(answers[original], self.response_chars)}\n"
            f"</candidate {shown}>"
            for shown, original in enumerate(order, start=1)
        )
        return self.prompts["judge_select"].render(question=fence(question), candidates=candidates)

    async def select(self, question: str, answers: Sequence[str], rng: random.Random) -> Choice:
        """Pick the best of ``answers``; they are shuffled so position cannot bias the pick."""
        if not answers:
            return Choice(None, "", "no answers to choose from", 0)
        order = list(range(len(answers)))
        rng.shuffle(order)
        schema = selection_schema(len(answers))
        outcome = await self.caller.call(schema, self.select_prompt(question, answers, order))
        if outcome.value is None:
            return Choice(None, "", outcome.reason, outcome.tokens)
        picked = outcome.value.best
        if not 1 <= picked <= len(answers):
            return Choice(None, "", f"picked candidate {picked} of {len(answers)}", outcome.tokens)
        return Choice(order[picked - 1], outcome.value.reasoning, "", outcome.tokens)
