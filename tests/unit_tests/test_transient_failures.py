"""Transient failures leave the triple missing; the next pass stores the recovered score.

The subject (a PopulationClient) and the judge talk to stub OpenAI-compatible servers
on 127.0.0.1 that answer 429, 503 or stall past the timeout once, then recover. Before
issue 10 each of these (but the subject's timeout) was stored as a score of 0 and never
asked again.
"""

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from acdc.agents import sandbox
from acdc.agents.judge import Judge
from acdc.agents.structured import caller_for
from acdc.agents.subjects import Subjects
from acdc.context import Context
from acdc.population.client import PopulationClient
from acdc.population.experts import ExpertStore
from acdc.runstore import EvalKey, EvaluationStore
from acdc.tasks import Task
from tests.stub_openai import Reply, StubOpenAI

TIMEOUT = 0.4
STALL = 1.5  # seconds a stalled reply waits: past TIMEOUT
RIGHT = "Let me add.\nAnswer: 42"
PASSED = json.dumps({"reasoning": "matches the reference", "score": 1.0})


def make_task(grading: str) -> Task:
    rubric = {"rubric": "Full marks for 42."} if grading == "rubric" else {}
    return Task.model_validate(
        {
            **rubric,
            "id": f"t-{grading}",
            "name": "Sum",
            "description": "Add numbers.",
            "capability": "arithmetic",
            "subject": "math",
            "difficulty": 1,
            "grading": grading,
            "instances": [
                {"id": f"i{k}", "instruction": f"What is 40 + 2? ({k})", "reference": "42"}
                for k in (1, 2, 3)
            ],
        }
    )


class CutStub(StubOpenAI):
    """Every reply ends at the token limit (finish_reason "length")."""

    def respond(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        status, payload = super().respond(body)
        if status == 200:
            payload["choices"][0]["finish_reason"] = "length"
        return status, payload


def evaluate_passes(
    tmp_path: Path, subject: StubOpenAI, judge: StubOpenAI, task: Task, passes: int
) -> tuple[EvaluationStore, list[int]]:
    """Run ``passes`` evaluation passes of one triple; returns the store and records per pass."""
    ctx = Context(judge_base_url=judge.url, judge_model="stub", judge_retries=0)
    ctx.judge_timeout = TIMEOUT
    store = EvaluationStore(tmp_path / "evaluations.jsonl")
    keys: list[EvalKey] = [("base", task.id, "i1")]
    counts = []
    for _ in range(passes):

        async def one_pass() -> None:
            client = PopulationClient(
                subject.url.removesuffix("/v1"),
                ExpertStore(tmp_path / "experts"),
                base_id="base",
                max_loaded=1,
                timeout=TIMEOUT,
                retries=0,
            )
            judge_role = Judge(caller_for(ctx, "judge", judge.url))
            subjects = Subjects(client, judge_role, max_tokens=64, concurrency=2)
            await subjects.evaluate(keys, {task.id: task}, store)
            await client.aclose()

        asyncio.run(one_pass())
        counts.append(len(store))
    return store, counts


@pytest.mark.parametrize(
    ("grading", "subject_replies", "judge_replies"),
    [
        ("exact", [503, RIGHT], []),
        ("exact", [429, RIGHT], []),
        ("exact", [STALL, RIGHT], []),
        ("rubric", [RIGHT, RIGHT], [503, PASSED]),
        ("rubric", [RIGHT, RIGHT], [429, PASSED]),
        ("rubric", [RIGHT, RIGHT], [STALL, PASSED]),
    ],
    ids=[f"{who}-{what}" for who in ("subject", "judge") for what in ("503", "429", "timeout")],
)
def test_a_transient_failure_is_retried_and_the_recovered_score_is_stored(
    tmp_path: Path, grading: str, subject_replies: list[Reply], judge_replies: list[Reply]
) -> None:
    with StubOpenAI(subject_replies) as subject, StubOpenAI(judge_replies) as judge:
        store, counts = evaluate_passes(tmp_path, subject, judge, make_task(grading), passes=2)
    assert counts == [0, 1]  # nothing stored by the failed pass
    (record,) = store.records()
    assert record.score == 1.0 and record.error == ""
    assert "42" in record.response


def test_a_final_judge_failure_is_a_recorded_zero_that_is_not_retried(tmp_path: Path) -> None:
    with StubOpenAI([], default=RIGHT) as subject, StubOpenAI([], default="no JSON") as judge:
        store, counts = evaluate_passes(tmp_path, subject, judge, make_task("rubric"), passes=2)
        asked = len(judge.requests)
    assert counts == [1, 1] and asked == 1
    (record,) = store.records()
    assert record.score == 0.0 and record.error.startswith("judge failed")


def test_an_answer_cut_before_its_answer_line_is_unanswered(tmp_path: Path) -> None:
    with CutStub([], default="40 + 2 is 42, so the answer") as subject, StubOpenAI([]) as judge:
        store, _ = evaluate_passes(tmp_path, subject, judge, make_task("numeric"), passes=1)
    (record,) = store.records()
    assert record.score == 0.0 and record.reasoning.startswith("unanswered: cut at the token")


LENGTH_CODE = "def score(instance, submission):\n    return 1.0 if '42' in submission else 0.0\n"


def test_a_sandbox_that_cannot_start_stores_nothing_and_the_next_pass_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real sandbox, through the python grader the subjects use: the host cannot make
    # the sandbox's scratch folder in the first pass (sandbox_error), then recovers.
    if sandbox.isolation() is None:  # probed (and cached) while the host still works
        pytest.skip("no sandbox isolation works on this machine")
    task = make_task("exact").model_copy(
        update={"id": "t-python", "grading": "python", "score_code": LENGTH_CODE}
    )
    with StubOpenAI([], default=RIGHT) as subject, StubOpenAI([]) as judge:
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))
        _, first = evaluate_passes(tmp_path, subject, judge, task, passes=1)
        monkeypatch.undo()
        store, second = evaluate_passes(tmp_path, subject, judge, task, passes=1)
    assert (first, second) == ([0], [1])  # a 0 stored in the first pass would never be retried
    (record,) = store.records()
    assert record.score == 1.0 and record.error == ""
