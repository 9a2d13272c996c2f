"""Deterministic graders, registered by name; ``rubric`` tasks go to the LLM judge instead.

A grader is a small frozen dataclass with a ``name`` and ``grade(task, instance,
submission) -> Grade``; its fields are its parameters, so a variant (say, a python
grader with longer limits) is a configured instance, not a copy. ``get(name)`` returns
the default instance and lists the valid names on a typo. No LLM calls happen here.
"""

import logging
import math
import re
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from acdc.agents import answers
from acdc.agents.sandbox import SandboxLimits, SandboxUnavailableError, run_score
from acdc.agents.sandbox_outcome import SandboxResult
from acdc.normal_form import normalize
from acdc.tasks import Task, TaskInstance, parse_reference_number

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Grade:
    """The grade of one submission to one task instance.

    Attributes:
        score: In [0, 1]; 1 is fully correct.
        extracted: The answer the grader read from the submission, if any.
        reason: Why this score, short enough for a log line.
        failed: True when the grader itself could not grade (e.g. the task's score code
            crashed); the score is then 0 and says nothing about the subject.
        transient: True when the failure was the grading host's, not the task's (the
            sandbox could not run, or the host killed it at the wall-clock limit): the
            same grading may succeed later, so the caller stores nothing and asks again.
    """

    score: float
    extracted: str | None
    reason: str
    failed: bool = False
    transient: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"a grade's score must be in [0, 1], got {self.score}")


class Grader(Protocol):
    """Anything that grades a submission to a task instance."""

    name: ClassVar[str]

    def grade(self, task: Task, instance: TaskInstance, submission: str) -> Grade:
        """Grade ``submission``, the subject's full response to ``instance``."""
        ...


class NeedsJudgeError(RuntimeError):
    """The task's grading needs the LLM judge, which lives outside this module."""


def _binary(ok: bool, extracted: str | None, why: str) -> Grade:
    return Grade(1.0 if ok else 0.0, extracted, why)


@dataclass(frozen=True)
class ExactGrader:
    """Exact match after case-folding, whitespace collapsing and trailing punctuation."""

    name: ClassVar[str] = "exact"

    def grade(self, task: Task, instance: TaskInstance, submission: str) -> Grade:
        """Compare the final answer with the reference, both normalised."""
        got = answers.final_answer(submission)
        if got is None:
            return Grade(0.0, None, "no answer found")
        want = normalize(instance.reference or "")
        return _binary(normalize(got) == want, got, f"expected {instance.reference!r}")


@dataclass(frozen=True)
class ChoiceGrader:
    """Multiple choice: the picked letter (or the option's text) against the reference."""

    name: ClassVar[str] = "choice"

    def grade(self, task: Task, instance: TaskInstance, submission: str) -> Grade:
        """Extract the letter the submission picks and compare it with the reference."""
        letter = answers.choice_letter(submission, instance.options or [])
        if letter is None:
            return Grade(0.0, None, "no option letter found")
        return _binary(letter == instance.reference, letter, f"expected {instance.reference}")


@dataclass(frozen=True)
class NumericGrader:
    """A number within ``task.tolerance`` of the reference, absolute or relative.

    Passing when either ``|x - ref| <= tol`` or ``|x - ref| <= tol * max(|x|, |ref|)``
    holds (``math.isclose``), so one tolerance suits both 0.5 and 1e9.
    """

    name: ClassVar[str] = "numeric"

    def grade(self, task: Task, instance: TaskInstance, submission: str) -> Grade:
        """Parse the answer's number, tolerant of units, commas, $, % and fractions."""
        value, text = answers.numeric_answer(submission)
        if value is None:
            return Grade(0.0, text, "no number found in the answer")
        want = parse_reference_number(instance.reference or "")
        tol = task.tolerance
        ok = math.isclose(value, want, rel_tol=tol, abs_tol=tol)
        return _binary(ok, text, f"read {value:g}, expected {want:g} (tolerance {tol:g})")


@dataclass(frozen=True)
class RegexGrader:
    """The final answer must match ``task.pattern`` in full (``re.fullmatch``).

    The final answer is the last ``Answer:`` line, or the whole stripped response when
    there is none. Authors wanting a search write ``(?s).*word.*``; flags go inline.
    """

    name: ClassVar[str] = "regex"
    max_chars: int = 20_000
    """Longer answers are cut, because a pathological pattern backtracks with length."""

    def grade(self, task: Task, instance: TaskInstance, submission: str) -> Grade:
        """Match the final answer against the task's pattern."""
        got = answers.answer_line(submission) or submission.strip()
        ok = re.fullmatch(task.pattern or "", got[: self.max_chars]) is not None
        return _binary(ok, got, f"pattern {task.pattern!r} {'matched' if ok else 'did not match'}")


HOST_WALL_CLOCK = "wall-clock limit"
"""How ``sandbox.run_score`` begins the detail of a ``timeout`` that the host decided.

The sandbox reports two timeouts under one kind: the child's, when the score code used
up its CPU seconds (the child says "CPU time limit ..."), and the host's, when the call
outlived ``wall_seconds`` without the child reporting anything. Only this detail tells
them apart; ``tests/unit_tests/test_graders.py`` checks it on the real sandbox."""


def host_failure(result: SandboxResult) -> bool:
    """Whether a failed sandbox call failed for the host's reasons, not the task's code.

    ``sandbox_error`` is the sandbox itself (it could not start, its setup failed, it
    died without a result). A timeout is the host's when the host killed the call at
    the wall-clock limit before the CPU limit was hit: a busy machine (the model server
    shares its cores) can starve a score function that would finish in time.

    Limitation: the host cannot tell starvation from code that waits without using CPU
    (a ``sleep``, many ``run_submission`` calls that each wait out their timeout), so
    such code is asked again on every evaluation pass instead of scored 0; its task stays
    masked for the expert until a pass finishes in time, and verification (which runs
    the score code on the references first) keeps most of it out of the pool.
    """
    if result.failure == "sandbox_error":
        return True
    return result.failure == "timeout" and result.detail.startswith(HOST_WALL_CLOCK)


@dataclass(frozen=True)
class PythonGrader:
    """Runs the task's own ``score(instance, submission)`` in the sandbox.

    Raises SandboxUnavailableError when no isolation works and ``allow_unisolated`` is
    False: every python task would fail the same way, so it must be loud, not a zero.
    A failure of the host (:func:`host_failure`) is a transient grade.
    """

    name: ClassVar[str] = "python"
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    allow_unisolated: bool = False

    def grade(self, task: Task, instance: TaskInstance, submission: str) -> Grade:
        """Score in the sandbox; a crash of the task's code is a failed grade, not a raise."""
        result = run_score(
            task.score_code or "",
            instance.model_dump(mode="json", exclude={"wrong_answer"}),
            submission,
            limits=self.limits,
            allow_unisolated=self.allow_unisolated,
        )
        if result.failure == "not_isolated":
            raise SandboxUnavailableError(result.detail)
        if result.score is None:
            transient = host_failure(result)
            logger.warning("task %s: score code failed (%s)", task.id, result.failure)
            reason = f"score code failed ({result.failure}): {result.detail}"
            return Grade(0.0, None, reason, failed=True, transient=transient)
        return Grade(result.score, None, result.detail or "scored by the task's code")


@dataclass(frozen=True)
class RubricGrader:
    """Placeholder so ``get("rubric")`` exists: rubric tasks are graded by the LLM judge."""

    name: ClassVar[str] = "rubric"

    def grade(self, task: Task, instance: TaskInstance, submission: str) -> Grade:
        """Always raises: rubric grading needs a model, and this module calls none."""
        raise NeedsJudgeError(
            f"task {task.id} uses rubric grading: grade it with the LLM judge "
            "(acdc.agents.judge), not with a deterministic grader"
        )


_REGISTRY: dict[str, Grader] = {
    g.name: g
    for g in (
        ExactGrader(),
        ChoiceGrader(),
        NumericGrader(),
        RegexGrader(),
        PythonGrader(),
        RubricGrader(),
    )
}
DETERMINISTIC = ("exact", "choice", "numeric", "regex", "python")
"""Grading modes handled here without a model."""


def names() -> list[str]:
    """Registered grader names."""
    return sorted(_REGISTRY)


def get(name: str) -> Grader:
    """The default grader registered as ``name``.

    Raises:
        KeyError: Unknown name; the message lists the valid ones.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown grader {name!r}; valid: {', '.join(names())}") from None


def grade(task: Task, instance: TaskInstance, submission: str) -> Grade:
    """Grade with the default grader of ``task.grading`` (rubric raises NeedsJudgeError)."""
    return get(task.grading).grade(task, instance, submission)


def answer_key(task: Task, instance: TaskInstance, response: str) -> str:
    """The answer ``response`` gives, in the form its grader compares ("" = none read).

    Two responses with the same key give the same answer ("B" and "Answer: (B)."), so
    the archive's diversity counts disagreements on this (``graphs/diversity.py``).
    """
    if task.grading == "choice" and instance.options:
        return answers.choice_letter(response, list(instance.options)) or ""
    if task.grading == "numeric":
        value, _ = answers.numeric_answer(response)
        return "" if value is None else format(value, ".10g")
    found = answers.final_answer(response)
    return "" if found is None else normalize(found)
