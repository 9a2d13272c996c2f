"""Task model validation, task files, and the seed tasks (every reference scores 1.0)."""

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from acdc.agents import graders, sandbox
from acdc.agents.graders import PythonGrader
from acdc.tasks import (
    Task,
    TaskError,
    load_task,
    load_tasks,
    parse_reference_number,
    save_task,
    seed_tasks_dir,
)

SEED_FILES = sorted(seed_tasks_dir().glob("*.json"))


def base_task(**changes: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "id": "t-1",
        "name": "Sums",
        "description": "Add small numbers.",
        "capability": "addition",
        "subject": "math",
        "difficulty": 1,
        "grading": "exact",
        "instances": [
            {"id": f"i{n}", "instruction": f"What is {n} + {n}?", "reference": str(2 * n)}
            for n in range(3)
        ],
    }
    task.update(changes)
    return task


def choice_instances(reference: str = "B", options: list[str] | None = None) -> list[dict]:
    opts = ["red", "green", "blue", "white"] if options is None else options
    return [
        {"id": f"i{n}", "instruction": "Pick one.", "reference": reference, "options": opts}
        for n in range(3)
    ]


def with_reference(reference: str | None) -> list[dict]:
    return [{"id": f"i{n}", "instruction": "Q?", "reference": reference} for n in range(3)]


SCORE_CODE = "def score(instance, submission):\n    return 1.0\n"


# --- the seed tasks ---------------------------------------------------------------


def test_seed_tasks_dir_is_the_repository_folder():
    assert seed_tasks_dir() == Path(__file__).resolve().parents[2] / "tasks" / "seed"
    assert seed_tasks_dir().is_dir()


@pytest.mark.parametrize("path", SEED_FILES, ids=[p.stem for p in SEED_FILES])
def test_every_seed_file_loads_and_is_a_seed(path: Path):
    task = load_task(path)
    assert path.stem == task.id
    assert 3 <= len(task.instances) <= 5
    assert task.adaptation == "seed"
    assert task.parent_id is None
    assert task.generation == 0


def test_seed_tasks_cover_every_grading_mode_and_several_subjects():
    tasks = load_tasks(seed_tasks_dir())
    assert len(tasks) >= 8
    assert {t.grading for t in tasks} == {"exact", "choice", "numeric", "regex", "rubric", "python"}
    subjects = Counter(t.subject for t in tasks)
    for subject in ("math", "programming", "logic", "writing", "instruction following"):
        assert subjects[subject] >= 1, subject
    assert subjects["science"] + subjects["general knowledge"] >= 2


def deterministic_cases() -> list[tuple[Task, int]]:
    return [
        (task, index)
        for task in load_tasks(seed_tasks_dir())
        if task.grading in graders.DETERMINISTIC
        for index, inst in enumerate(task.instances)
        if inst.reference is not None
    ]


SEED_CASES = deterministic_cases()


@pytest.mark.parametrize(
    ("task", "index"), SEED_CASES, ids=[f"{t.id}/{t.instances[i].id}" for t, i in SEED_CASES]
)
def test_every_seed_reference_scores_full_marks_with_its_own_grader(task: Task, index: int):
    instance = task.instances[index]
    grader = graders.get(task.grading)
    if task.grading == "python" and sandbox.isolation() is None:
        # Hand-written seed code is trusted; only generated code needs the isolation.
        grader = PythonGrader(allow_unisolated=True)
    response = f"Let me think about this.\nAnswer: {instance.reference}"
    grade = grader.grade(task, instance, response)
    assert grade.score == 1.0, grade
    assert not grade.failed


def test_seed_python_tasks_reject_a_wrong_answer():
    tasks = {t.id: t for t in load_tasks(seed_tasks_dir())}
    code_task = tasks["seed-code-write-function"]
    grader = graders.get("python")
    if sandbox.isolation() is None:
        grader = PythonGrader(allow_unisolated=True)
    naive = "```python\ndef is_palindrome(s):\n    return s == s[::-1]\n```"
    assert grader.grade(code_task, code_task.instances[0], naive).score < 1.0
    writing = tasks["seed-writing-constraints"]
    with_e = "Answer: The cat sleeps all day on a warm rug."
    assert grader.grade(writing, writing.instances[1], with_e).score == 0.0


# --- validation --------------------------------------------------------------------


def test_a_valid_task_validates_and_defaults_apply():
    task = Task.model_validate(base_task())
    assert task.tolerance == 1e-6
    assert task.generation == 0
    assert task.rubric == ""


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"grading": "choice", "instances": with_reference("B")}, "2-26 options"),
        ({"grading": "choice", "instances": choice_instances("E")}, "one letter of ABCD"),
        ({"grading": "choice", "instances": choice_instances("AB")}, "one letter of ABCD"),
        ({"grading": "choice", "instances": choice_instances("b")}, "one letter of ABCD"),
        ({"grading": "choice", "instances": choice_instances("A", ["x", "x"])}, "distinct"),
        ({"grading": "choice", "instances": choice_instances("A", ["only"])}, "2-26 options"),
        ({"instances": choice_instances("A")}, "options are only used by choice"),
        ({"grading": "regex"}, "needs a pattern"),
        ({"grading": "regex", "pattern": "(unclosed"}, "does not compile"),
        ({"grading": "regex", "pattern": "[a-z]+"}, "does not match the pattern"),
        ({"grading": "python"}, "needs score_code"),
        ({"grading": "python", "score_code": "def grade(a, b):\n    return 1\n"}, "define"),
        ({"grading": "python", "score_code": "def score(a):\n    return 1\n"}, "must take"),
        ({"grading": "python", "score_code": "def score(a, b)\n"}, "does not parse"),
        ({"score_code": SCORE_CODE}, "score_code is only used by python"),
        ({"pattern": ".*"}, "pattern is only used by regex"),
        ({"instances": with_reference(None)}, "needs a reference"),
        ({"instances": with_reference("  ")}, "needs a reference"),
        ({"grading": "numeric", "instances": with_reference("twelve")}, "not a number"),
        ({"grading": "numeric", "instances": with_reference("1/2/3")}, "not a number"),
        ({"grading": "rubric", "instances": with_reference(None)}, "non-empty rubric"),
        ({"instances": base_task()["instances"][:2]}, "at least 3"),
        ({"instances": [*base_task()["instances"]] * 2}, "at most 5"),
        ({"difficulty": 0}, "greater than or equal to 1"),
        ({"difficulty": 6}, "less than or equal to 5"),
        ({"tolerance": -1.0}, "greater than or equal to 0"),
        ({"tolerance": float("inf")}, "finite"),
        ({"id": "has space"}, "should match pattern"),
        ({"id": ""}, "should match pattern"),
        ({"adaptation": "harder"}, "needs a parent_id"),
        ({"adaptation": "seed", "parent_id": "p"}, "no parent_id"),
        ({"parent_id": "t-1"}, "own parent"),
        ({"grading": "fuzzy"}, "Input should be"),
        ({"unknown_field": 1}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_tasks_are_rejected_with_a_clear_message(changes: dict, message: str):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        Task.model_validate(base_task(**changes))


def test_instance_ids_must_be_unique():
    instances = [{"id": "same", "instruction": "Q?", "reference": "1"}] * 3
    with pytest.raises(ValueError, match="instance ids must be unique"):
        Task.model_validate(base_task(instances=instances))


def test_valid_variants_of_each_grading_mode():
    Task.model_validate(base_task(grading="choice", instances=choice_instances("D")))
    Task.model_validate(base_task(grading="regex", pattern=r"\d+"))
    Task.model_validate(base_task(grading="regex", pattern="x", instances=with_reference(None)))
    Task.model_validate(base_task(grading="python", score_code=SCORE_CODE))
    Task.model_validate(
        base_task(grading="rubric", rubric="Be kind.", instances=with_reference(None))
    )
    Task.model_validate(base_task(grading="numeric", instances=with_reference("-1")))
    Task.model_validate(base_task(adaptation="harder", parent_id="t-0", generation=3))


def test_validating_score_code_never_executes_it(tmp_path: Path):
    marker = tmp_path / "executed"
    code = f"open({str(marker)!r}, 'w').close()\n\ndef score(instance, submission):\n    return 1\n"
    Task.model_validate(base_task(grading="python", score_code=code))
    assert not marker.exists()


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12", 12.0),
        ("-3.5", -3.5),
        ("1e3", 1000.0),
        ("2/3", 2 / 3),
        (" 7/12 ", 7 / 12),
        (".5", 0.5),
    ],
)
def test_numeric_references_parse(text: str, value: float):
    assert parse_reference_number(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "1,000", "12 apples", "1/0", "1/0x", "abc", "1/2/3"])
def test_bad_numeric_references_raise(text: str):
    with pytest.raises(ValueError):
        parse_reference_number(text)


# --- files -------------------------------------------------------------------------


def test_save_then_load_round_trips_and_leaves_no_temp_files(tmp_path: Path):
    task = Task.model_validate(base_task(grading="python", score_code=SCORE_CODE))
    path = tmp_path / "nested" / "t-1.json"
    save_task(task, path)
    assert load_task(path) == task
    assert [p.name for p in path.parent.iterdir()] == ["t-1.json"]
    assert json.loads(path.read_text())["score_code"] == SCORE_CODE


def test_load_task_errors_name_the_file(tmp_path: Path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(TaskError, match=r"broken\.json"):
        load_task(broken)
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps(base_task(difficulty=9)))
    with pytest.raises(TaskError, match=r"(?s)invalid\.json.*difficulty"):
        load_task(invalid)
    with pytest.raises(TaskError, match=r"missing\.json"):
        load_task(tmp_path / "missing.json")


def test_load_tasks_sorts_by_id_not_file_name(tmp_path: Path):
    for file_name, task_id in (("a.json", "zeta"), ("b.json", "alpha"), ("c.json", "mid")):
        save_task(Task.model_validate(base_task(id=task_id)), tmp_path / file_name)
    (tmp_path / "notes.txt").write_text("ignored")
    assert [t.id for t in load_tasks(tmp_path)] == ["alpha", "mid", "zeta"]


def test_load_tasks_rejects_duplicate_ids_naming_both_files(tmp_path: Path):
    task = Task.model_validate(base_task())
    save_task(task, tmp_path / "one.json")
    save_task(task, tmp_path / "two.json")
    with pytest.raises(TaskError, match=r"two\.json.*one\.json"):
        load_tasks(tmp_path)


def test_load_tasks_on_a_missing_folder_raises(tmp_path: Path):
    with pytest.raises(TaskError, match="not a folder"):
        load_tasks(tmp_path / "nope")
