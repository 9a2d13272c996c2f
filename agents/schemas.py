"""Structured outputs of the roles: small pydantic models described for the model.

Every free-text field has a length cap. Under guided decoding the cap is part of the
grammar, so a small model that starts repeating itself must still close its JSON
instead of running into the token limit (seen with SmolLM2-135M as a judge). The server
emits compact JSON (no free whitespace), so the caps bound a whole TaskDraft to about
8,000 characters: the scientist's default 2,048 new tokens at the usual 3-4 characters
per token. The judge's and the curator's replies fit their default limits (768 and 512
tokens) even at one character per token. Integers are bounded for the same reason: an
unbounded ``best`` let SmolLM2 write digits until the limit.
"""

import functools
import hashlib
from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationError, create_model

from acdc.tasks import Adaptation, Task

DraftGrading = Literal["exact", "numeric", "choice", "regex", "rubric", "python"]


class InstanceDraft(BaseModel):
    """One question of a proposed task."""

    instruction: str = Field(
        max_length=400, description="The full, self-contained question put to the model."
    )
    reference: str | None = Field(
        default=None,
        max_length=300,
        description="The correct final answer (a letter for choice tasks).",
    )
    options: list[Annotated[str, Field(max_length=100)]] | None = Field(
        default=None,
        max_length=6,
        description="Answer options for choice tasks only; A is the first.",
    )
    wrong_answer: str = Field(
        max_length=100,
        description="A plausible but WRONG final answer that the grading must reject.",
    )


class TaskDraft(BaseModel):
    """A task as the task-scientist proposes it."""

    name: str = Field(max_length=60, description="Short name of the task, a few words.")
    description: str = Field(
        max_length=240, description="One or two sentences: what the task tests."
    )
    capability: str = Field(max_length=60, description="The skill tested, as a 2-5 word label.")
    subject: str = Field(max_length=40, description="Subject area, e.g. math, logic, writing.")
    difficulty: int = Field(ge=1, le=5, description="1 (easy) to 5 (very hard).")
    grading: DraftGrading = Field(description="How answers are checked.")
    rubric: str = Field(max_length=240, description="How to judge an answer, one or two sentences.")
    pattern: str | None = Field(
        default=None, max_length=120, description="Regex grading only: the pattern."
    )
    score_code: str | None = Field(
        default=None,
        max_length=800,
        description="Python grading only: defines score(instance, submission).",
    )
    instances: list[InstanceDraft] = Field(min_length=3, max_length=5)


class Verdict(BaseModel):
    """The judge's grade of one response."""

    reasoning: str = Field(
        max_length=600, description="Step-by-step comparison with the reference and rubric."
    )
    score: float = Field(ge=0.0, le=1.0, description="0 = wrong, 1 = fully correct.")


class TaskReview(BaseModel):
    """The judge's check of a new task."""

    reasoning: str = Field(
        max_length=600, description="Your review, solving each instance yourself."
    )
    well_formed: bool = Field(description="Clear, self-contained, consistent with its grading.")
    solvable: bool = Field(description="Every instance can be answered from its instruction.")
    references_correct: bool = Field(description="Every reference answer is right.")


class Selection(BaseModel):
    """The judge's pick among candidate answers."""

    reasoning: str = Field(max_length=600, description="Comparison of the candidates.")
    best: int = Field(ge=1, description="Number of the best candidate, from 1.")


@functools.cache
def selection_schema(candidates: int) -> type[Selection]:
    """``Selection`` with ``best`` at most ``candidates``, so the grammar bounds its digits."""
    best = Field(ge=1, le=candidates, description="Number of the best candidate, from 1.")
    schema: type[Selection] = create_model(
        "Selection", __base__=Selection, __doc__=Selection.__doc__, best=(int, best)
    )
    return schema


class NoveltyCheck(BaseModel):
    """The curator's judgement of a candidate task against its nearest neighbours."""

    reasoning: str = Field(
        max_length=400, description="What the candidate tests that the neighbours do not."
    )
    interestingly_new: bool = Field(description="True if it tests something genuinely new.")


def draft_to_task(
    draft: TaskDraft, *, generation: int, adaptation: Adaptation, parent_id: str | None
) -> Task:
    """Turn a draft into a validated Task with a content-derived id.

    Raises:
        ValueError: the draft breaks a task rule (the message lists every problem).
    """
    content = draft.model_dump_json()
    digest = hashlib.sha256(f"{content}|{parent_id}|{adaptation}".encode()).hexdigest()[:12]
    try:
        # Validated as raw data, so the instances' problems and the task's come in one error.
        return Task.model_validate(
            {
                "id": f"t{generation:03d}-{digest}",
                "name": draft.name.strip(),
                "description": draft.description.strip(),
                "capability": draft.capability.strip().lower(),
                "subject": draft.subject.strip().lower(),
                "difficulty": draft.difficulty,
                "grading": draft.grading,
                "rubric": draft.rubric.strip(),
                "pattern": draft.pattern if draft.grading == "regex" else None,
                "score_code": draft.score_code if draft.grading == "python" else None,
                "instances": [
                    {
                        "id": f"i{n}",
                        "instruction": inst.instruction.strip(),
                        "reference": (inst.reference or "").strip() or None,
                        "options": inst.options if draft.grading == "choice" else None,
                        "wrong_answer": inst.wrong_answer.strip() or None,
                    }
                    for n, inst in enumerate(draft.instances, start=1)
                ],
                "parent_id": parent_id,
                "adaptation": adaptation,
                "generation": generation,
            }
        )
    except ValidationError as err:
        problems = "; ".join(e["msg"] for e in err.errors())
        raise ValueError(f"invalid task draft: {problems}") from err


def task_to_draft(task: Task) -> TaskDraft:
    """The draft form of a task, shown to the scientist when it adapts or reflects.

    Built without validation: the length caps bound what a model writes, not the
    hand-written or edited tasks it is shown.
    """
    return TaskDraft.model_construct(
        name=task.name,
        description=task.description,
        capability=task.capability,
        subject=task.subject,
        difficulty=task.difficulty,
        grading=task.grading,
        rubric=task.rubric,
        pattern=task.pattern,
        score_code=task.score_code,
        instances=[
            InstanceDraft.model_construct(
                instruction=i.instruction,
                reference=i.reference,
                options=i.options,
                wrong_answer=i.wrong_answer or "",
            )
            for i in task.instances
        ],
    )
