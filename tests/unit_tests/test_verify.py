"""Verified admission: a candidate's own grader must pass its references and fail wrong answers."""

from acdc.agents.verify import NON_ANSWER, as_subject, verify_task
from acdc.tasks import Task, load_tasks, seed_tasks_dir


def make(grading: str, instances: list[dict[str, object]], **fields: object) -> Task:
    return Task.model_validate(
        {
            "id": "t-verify",
            "name": "verify me",
            "description": "A task under verification.",
            "capability": "testing",
            "subject": "testing",
            "difficulty": 2,
            "grading": grading,
            "rubric": "Judge it.",
            "instances": [{"id": f"i{n}", **inst} for n, inst in enumerate(instances)],
            **fields,
        }
    )


def numeric(references: list[str], wrongs: list[str]) -> Task:
    return make(
        "numeric",
        [
            {"instruction": f"Question {n}?", "reference": r, "wrong_answer": w}
            for n, (r, w) in enumerate(zip(references, wrongs, strict=True))
        ],
    )


def test_a_sound_task_passes_verification():
    result = verify_task(numeric(["12", "7", "3.5"], ["13", "8", "35"]))
    assert result.ok, result.reason


def test_a_wrong_answer_the_grader_accepts_is_refused():
    # The wrong answer of the second instance equals its reference: the grader cannot tell.
    result = verify_task(numeric(["12", "7", "3.5"], ["13", "7", "35"]))
    assert not result.ok and "instance i1" in result.reason and "wrong answer" in result.reason


def test_a_missing_wrong_answer_is_refused():
    task = make(
        "exact",
        [{"instruction": f"Q{n}?", "reference": "yes"} for n in range(3)],
    )
    result = verify_task(task)
    assert not result.ok and "no wrong answer" in result.reason


def test_a_reference_that_fails_its_own_regex_is_refused():
    # Every reference matches the pattern as written, so the task is valid; but a subject
    # writing "Answer: 4." has its trailing full stop read off, as for any answer, and
    # the pattern demands it: not even the reference can pass.
    task = make(
        "regex",
        [
            {"instruction": f"Count to {n} and stop.", "reference": f"{n}.", "wrong_answer": "x"}
            for n in (3, 4, 5)
        ],
        pattern=r"\d+\.",
    )
    result = verify_task(task)
    assert not result.ok and "instance i0" in result.reason
    assert "reference scores 0" in result.reason


def test_a_regex_that_matches_everything_is_refused():
    task = make(
        "regex",
        [
            {"instruction": f"Say something {n}.", "reference": "hello", "wrong_answer": "bye"}
            for n in range(3)
        ],
        pattern=r"(?s).*",
    )
    result = verify_task(task)
    assert not result.ok and "passes the wrong answer" in result.reason


def test_score_code_that_passes_everything_is_refused():
    code = "def score(instance, submission):\n    return 1.0\n"
    task = make(
        "python",
        [{"instruction": f"Q{n}", "reference": "a", "wrong_answer": "b"} for n in range(3)],
        score_code=code,
    )
    result = verify_task(task)
    assert not result.ok and "cannot tell" in result.reason


def test_score_code_that_raises_is_refused_with_the_reason():
    code = "def score(instance, submission):\n    return 1 / 0\n"
    task = make(
        "python",
        [{"instruction": f"Q{n}", "reference": "a", "wrong_answer": "b"} for n in range(3)],
        score_code=code,
    )
    result = verify_task(task)
    assert not result.ok and "ZeroDivisionError" in result.reason


def test_score_code_that_follows_the_contract_passes():
    code = (
        "import re\n"
        "def score(instance, submission):\n"
        "    found = re.findall(r'Answer:\\s*(.+)', submission)\n"
        "    return 1.0 if found and found[-1].strip() == instance['reference'] else 0.0\n"
    )
    task = make(
        "python",
        [{"instruction": f"Q{n}", "reference": f"r{n}", "wrong_answer": "x"} for n in range(3)],
        score_code=code,
    )
    result = verify_task(task)
    assert result.ok, result.reason


def test_rubric_tasks_skip_execution():
    task = make(
        "rubric",
        [{"instruction": f"Write a haiku {n}."} for n in range(3)],
    )
    assert verify_task(task).ok


def test_a_choice_grader_refuses_the_non_answer_and_code_references_are_submissions():
    assert NON_ANSWER.endswith("I do not know")
    assert as_subject("B", "choice") == "Answer: B"
    code = "```python\ndef f():\n    return 1\n```"
    assert as_subject(code, "python") == code


def test_the_bundled_seed_tasks_pass_their_own_graders():
    results = {t.id: verify_task(t) for t in load_tasks(seed_tasks_dir())}
    assert results and all(r.ok for r in results.values()), {
        i: r.reason for i, r in results.items() if not r.ok
    }


def test_a_reviewers_edit_that_breaks_the_grader_is_verified_again_and_refused():
    from acdc.graphs.review import apply_decision

    sound = numeric(["12", "7", "3.5"], ["13", "8", "35"])
    assert verify_task(sound).ok
    broken = sound.model_dump(mode="json")["instances"]
    broken[1]["reference"] = "8"  # now equal to its own wrong answer: the grader cannot tell
    renamed = {"name": "Renamed by a person"}
    admitted, rejected = apply_decision([sound], {"edit": {sound.id: {"instances": broken}}})
    assert admitted == [] and "fails verification" in rejected[sound.id]
    admitted, rejected = apply_decision([sound], {"edit": {sound.id: renamed}})
    assert rejected == {} and admitted[0].name == "Renamed by a person"
