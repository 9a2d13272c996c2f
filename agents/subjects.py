"""Subjects: experts answering task instances through the population server, then graded.

Each (expert, task, instance) becomes one evaluation record, written to the run's store
the moment it is graded, so a killed evaluation keeps everything it finished. Subjects
answer greedily (temperature 0) and are asked to end with an ``Answer:`` line that the
deterministic graders extract; rubric tasks go to the judge.

Only an answer is a score. A *transient* failure of the subject or the judge (timeout,
unreachable, HTTP 429 or 5xx after the client's retries; ``agents/failures.py``) leaves
the triple missing, so the next evaluation pass, the next generation or a resumed run
asks again. So does a failure of the grading host: a python grader whose sandbox could
not run (``sandbox_error``) or was killed at the host's wall-clock limit says nothing
about the answer (``graders.PythonGrader``). A *final* failure (a 400, a judge that
writes no valid verdict, score code that crashes or hits its CPU limit) is recorded
once with its reason and a score of 0, so it is never retried in a loop. An answer cut
at the token limit before it states one is unanswered: a 0 without grading.
"""

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from acdc.agents import answers, graders
from acdc.agents.failures import is_transient
from acdc.agents.judge import Judge
from acdc.costs import is_budget_refusal
from acdc.population.client import PopulationClient, ServerUnreachableError
from acdc.prompts.loader import Prompt, load_prompt
from acdc.runstore import EvalKey, EvalRecord, EvaluationStore
from acdc.tasks import LETTERS, Task, TaskInstance
from acdc.types import TaskId

log = logging.getLogger(__name__)

PROMPTS: dict[str, set[str]] = {"subject_answer": {"instruction"}}

Progress = Callable[[int, int, int], None]
"""Called with (done, total, completion tokens so far) after each record."""

EXTRACTED = ("exact", "choice", "numeric", "regex")
"""Grading modes that read an extracted answer: a cut answer without one is unanswered."""


@dataclass(frozen=True)
class Missing:
    """An item left unevaluated on purpose (a transient failure): a later pass retries it.

    Attributes:
        source: Whose failure: the subject's server, the judge, or the grader's host.
        reason: What failed, for the log.
    """

    source: Literal["subject", "judge", "grader"]
    reason: str


def question_text(instance: TaskInstance) -> str:
    """The instruction with its lettered options, as the subject sees it."""
    if not instance.options:
        return instance.instruction
    options = "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(instance.options))
    return f"{instance.instruction}\n{options}"


@dataclass
class Subjects:
    """Answer and grade missing evaluation triples with bounded concurrency."""

    client: PopulationClient
    judge: Judge
    max_tokens: int
    concurrency: int
    prompts_dir: str = ""
    unscored: Counter[str] = field(default_factory=Counter)
    """Items left missing by :meth:`evaluate`, by cause: ``subject``, ``judge``,
    ``grader`` (transient failures) and ``unreachable`` (the server was down). The caller
    tells an outage from a grading host that failed on a few items by it."""

    def __post_init__(self) -> None:
        self.prompt: Prompt = load_prompt(
            "subject_answer", PROMPTS["subject_answer"], self.prompts_dir
        )

    async def evaluate(
        self,
        keys: Sequence[EvalKey],
        tasks: dict[TaskId, Task],
        store: EvaluationStore,
        progress: Progress | None = None,
    ) -> int:
        """Evaluate ``keys`` not yet in ``store``; returns how many records were written.

        Items that failed because the server (or the judge) is unreachable are left
        missing, not recorded as failures: the caller restarts the server and calls again.
        """
        todo = store.missing(keys)
        limit = asyncio.Semaphore(self.concurrency)
        done, tokens = 0, 0
        down = asyncio.Event()  # set at the first unreachable error: stop starting items

        async def one(key: EvalKey) -> None:
            nonlocal done, tokens
            expert_id, task_id, instance_id = key
            task = tasks[task_id]
            instance = next(i for i in task.instances if i.id == instance_id)
            async with limit:
                if down.is_set():
                    return
                record = await self._answer(expert_id, task, instance)
            if record is None:  # the cost budget is spent: start nothing more
                down.set()
                return
            if isinstance(record, ServerUnreachableError):
                self.unscored["unreachable"] += 1
                if not down.is_set():  # one line for the outage, not one per item in flight
                    down.set()
                    log.warning("server unreachable; the rest stays for the next pass: %s", record)
                return
            if isinstance(record, Missing):
                self.unscored[record.source] += 1
                return
            store.add(record)
            done += 1
            tokens += record.tokens
            if progress is not None:
                progress(done, len(todo), tokens)

        await asyncio.gather(*(one(key) for key in todo))
        return done

    async def _answer(
        self, expert_id: str, task: Task, instance: TaskInstance
    ) -> EvalRecord | Missing | ServerUnreachableError | None:
        """The graded record, or why there is none.

        Missing after a transient failure, the error when the server is unreachable,
        None when the cost budget refused the judge.
        """
        started = time.perf_counter()
        messages = [
            {"role": "user", "content": self.prompt.render(instruction=question_text(instance))}
        ]
        try:
            reply = await self.client.chat(expert_id, messages, max_tokens=self.max_tokens)
        except ServerUnreachableError as err:
            return err
        except Exception as err:  # any failure is data, never raised
            log.warning("%s on %s/%s failed: %s", expert_id, task.id, instance.id, err)
            if is_transient(err):
                return Missing("subject", str(err))
            return EvalRecord(
                expert_id=expert_id,
                task_id=task.id,
                instance_id=instance.id,
                score=0.0,
                error=f"subject failed: {err}"[:500],
            )
        record = EvalRecord(
            expert_id=expert_id,
            task_id=task.id,
            instance_id=instance.id,
            score=0.0,
            response=reply.text,
            tokens=reply.completion_tokens,
            grader=task.grading,
        )
        if (
            reply.finish_reason == "length"
            and task.grading in EXTRACTED
            and not answers.has_answer(reply.text)
        ):
            record.reasoning = "unanswered: cut at the token limit before an answer"
        elif task.grading == "rubric":
            judging = time.perf_counter()
            verdict = await self.judge.grade(task, instance, reply.text)
            record.judge_tokens = verdict.tokens
            record.judge_seconds = round(time.perf_counter() - judging, 3)
            if verdict.score is None and verdict.transient:
                log.warning("judge unavailable for %s/%s: %s", task.id, instance.id, verdict.reason)
                return Missing("judge", verdict.reason)  # not the answer's fault: ask again
            if verdict.score is None and is_budget_refusal(verdict.reason):
                return None  # the cost budget stops the run; a resume grades it
            if verdict.score is None:
                record.error = f"judge failed: {verdict.reason}"[:500]
            else:
                record.score, record.reasoning = verdict.score, verdict.reasoning[:2000]
        else:
            grade = await asyncio.to_thread(graders.grade, task, instance, reply.text)
            if grade.transient:  # the grading host failed, not the answer: grade it later
                log.warning("grader unavailable for %s/%s: %s", task.id, instance.id, grade.reason)
                return Missing("grader", grade.reason)
            record.score, record.reasoning = grade.score, grade.reason[:2000]
            if grade.failed:
                record.error = f"grader failed: {grade.reason}"[:500]
        record.seconds = round(time.perf_counter() - started, 3)
        return record
