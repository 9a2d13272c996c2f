"""Verified admission (Code-as-Task): a candidate task's grader is run before it joins the pool.

For every instance of a deterministically graded task (exact, choice, numeric, regex,
python), the reference written as a subject would write it must pass the task's own
grader, and both the scientist's plausible wrong answer and a fixed non-answer must
fail it. So a reference that breaks its own regex, score code that raises or cannot
run, and a grader that passes everything are refused before any expert is scored on
them. Rubric tasks have no executable grader: they skip this stage and keep the
judge's review. Python graders run in the sandbox, never in this process.
"""

from dataclasses import dataclass

from acdc.agents import graders
from acdc.agents.sandbox import SandboxUnavailableError
from acdc.population.pass_rule import LABEL_THRESHOLD, passes
from acdc.tasks import Task, TaskInstance

NON_ANSWER = "I am not sure.\nAnswer: I do not know"
"""A submission no sound grader may pass: it names no answer at all."""


@dataclass(frozen=True)
class Verification:
    """Whether a task's grader behaves, and why not."""

    ok: bool
    reason: str


def as_subject(reference: str, grading: str) -> str:
    """``reference`` written the way a subject ends its answer.

    Code references (python grading, several lines) are the submission itself: score
    code reads the code block, not an ``Answer:`` line.
    """
    if grading == "python" and "\n" in reference.strip():
        return reference
    return f"Answer: {reference.strip()}"


def verify_task(task: Task) -> Verification:
    """Run ``task``'s grader on each instance's reference and wrong answers.

    Never raises: a grader that crashes, or a sandbox that cannot run, is a refusal
    with its reason.
    """
    if task.grading == "rubric":
        return Verification(True, "rubric task: no executable grader (judge-reviewed)")
    for instance in task.instances:
        problem = _instance_problem(task, instance)
        if problem:
            return Verification(False, f"instance {instance.id}: {problem}")
    return Verification(True, f"{len(task.instances)} references pass, wrong answers fail")


def _instance_problem(task: Task, instance: TaskInstance) -> str:
    """Why ``instance`` fails verification, or "" when it passes."""
    if not (instance.reference or "").strip():
        return "no reference answer to check the grader with"
    if not (instance.wrong_answer or "").strip():
        return "no wrong answer to check that the grader can fail"
    right = _grade(task, instance, as_subject(instance.reference or "", task.grading))
    if isinstance(right, str):
        return right
    if right.score < 1.0:
        return f"the reference scores {right.score:g} on its own grader ({right.reason[:200]})"
    for label, submission in (
        ("the wrong answer", as_subject(instance.wrong_answer or "", task.grading)),
        ("a non-answer", NON_ANSWER),
    ):
        wrong = _grade(task, instance, submission)
        if isinstance(wrong, str):
            return wrong
        if passes(wrong.score, LABEL_THRESHOLD):
            return f"the grader passes {label} (score {wrong.score:g}): it cannot tell"
    return ""


def _grade(task: Task, instance: TaskInstance, submission: str) -> graders.Grade | str:
    """The grade, or the reason the grader itself could not grade."""
    try:
        grade = graders.grade(task, instance, submission)
    except SandboxUnavailableError as err:
        return f"score code cannot be run here: {err}"[:300]
    except Exception as err:  # a grader bug on model-written fields must refuse, not raise
        return f"the grader raised {type(err).__name__}: {err}"[:300]
    if grade.failed:
        return f"the grader failed: {grade.reason}"[:300]
    return grade
