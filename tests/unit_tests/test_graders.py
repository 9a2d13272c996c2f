"""Graders and answer extraction: the registry, each mode, and many messy responses."""

import tempfile
from pathlib import Path
from typing import Any

import pytest

from acdc.agents import answers, graders, sandbox
from acdc.agents.graders import Grade, NeedsJudgeError, PythonGrader
from acdc.agents.sandbox import SandboxLimits, SandboxUnavailableError
from acdc.tasks import Task

OPTIONS = ["London", "Paris", "Berlin", "Madrid"]


def make_task(grading: str, reference: str | None = "42", **fields: Any) -> Task:
    options = fields.pop("options", None)
    instances = [
        {"id": f"i{n}", "instruction": "Q?", "reference": reference, "options": options}
        for n in range(3)
    ]
    return Task.model_validate(
        {
            "id": "t",
            "name": "t",
            "description": "d",
            "capability": "c",
            "subject": "s",
            "difficulty": 1,
            "grading": grading,
            "instances": instances,
            **fields,
        }
    )


def score(task: Task, submission: str) -> float:
    return graders.grade(task, task.instances[0], submission).score


# --- registry and Grade -------------------------------------------------------------


def test_registry_has_every_grading_mode():
    assert graders.names() == ["choice", "exact", "numeric", "python", "regex", "rubric"]
    for name in graders.names():
        assert graders.get(name).name == name


def test_unknown_grader_lists_the_valid_names():
    with pytest.raises(KeyError, match="valid: choice, exact, numeric, python, regex, rubric"):
        graders.get("fuzzy")


def test_rubric_grader_exists_but_points_to_the_judge():
    task = make_task("rubric", None, rubric="Be helpful.")
    with pytest.raises(NeedsJudgeError, match="judge"):
        graders.get("rubric").grade(task, task.instances[0], "anything")
    with pytest.raises(NeedsJudgeError):
        graders.grade(task, task.instances[0], "anything")


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_grade_rejects_scores_outside_the_unit_interval(bad: float):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Grade(bad, None, "x")


def test_grade_is_frozen():
    grade = Grade(1.0, "a", "ok")
    with pytest.raises(AttributeError):
        grade.score = 0.0  # type: ignore[misc]


# --- extraction ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Answer: 42", "42"),
        ("reasoning\nAnswer: 7\nmore text\nAnswer: 9", "9"),
        ("**Answer:** Canberra", "Canberra"),
        ("**Answer**: *Canberra*.", "Canberra"),
        ("Final answer: Iron!", "Iron"),
        ("answer:\n\n  H2O  ", "H2O"),
        ("> Answer: `x`", "x"),
        ("ANSWER\uff1ayes", "yes"),  # a full-width colon
        ("The answer depends on X.\nNo final line", None),
        ("no answer line at all", None),
    ],
)
def test_answer_line(text: str, expected: str | None):
    assert answers.answer_line(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Answer: Canberra", "Canberra"),
        ("We get \\boxed{42}. Done", "42"),
        ("So the final answer is Iron.", "Iron"),
        ("thinking...\n\nCanberra\n", "Canberra"),
        ("   \n  ", None),
    ],
)
def test_final_answer_falls_back_sensibly(text: str, expected: str | None):
    assert answers.final_answer(text) == expected


# --- exact --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("submission", "expected"),
    [
        ("Answer: Jane Austen", 1.0),
        ("Answer: jane   austen.", 1.0),
        ("Answer: **Jane Austen**", 1.0),
        ("I am sure.\nAnswer: 'Jane Austen'!", 1.0),
        ("Jane Austen", 1.0),
        ("Thinking: Charlotte Bronte? No.\nAnswer: Jane Austen", 1.0),
        ("Answer: Austen", 0.0),
        ("Answer: Jane Austen and Charlotte Bronte", 0.0),
        ("Answer: Jane Austen\nAnswer: Charlotte Bronte", 0.0),
        ("", 0.0),
    ],
)
def test_exact(submission: str, expected: float):
    assert score(make_task("exact", "Jane Austen"), submission) == expected


def test_exact_reports_the_extracted_answer():
    task = make_task("exact", "Iron")
    grade = graders.grade(task, task.instances[0], "Hmm.\nAnswer: iron.")
    assert grade == Grade(1.0, "iron", "expected 'Iron'")


# --- choice -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("submission", "letter"),
    [
        ("The answer is (B).", "B"),
        ("B)", "B"),
        ("**B**", "B"),
        ("Answer: b", "B"),
        ("Answer: (b)", "B"),
        ("**Answer:** (C)", "C"),
        ("Final answer: c", "C"),
        ("Answer:\nD", "D"),
        ("B) Paris", "B"),
        ("(B) Paris is the capital.", "B"),
        ("Answer: Paris", "B"),
        ("I think it's Paris.", "B"),
        ("Reasoning...\nOption C is right", "C"),
        ("(A) is wrong, so the answer is (B)", "B"),
        ("the answer is b.", "B"),
        ("Let me see. A is London... Answer: D", "D"),
        ("a", "A"),
        ("the answer is a bird", None),
        ("Answer: London or Paris", None),
        ("Answer: E", None),
        ("I don't know", None),
    ],
)
def test_choice_letter_extraction(submission: str, letter: str | None):
    assert answers.choice_letter(submission, OPTIONS) == letter


def test_choice_grader_compares_with_the_reference():
    task = make_task("choice", "B", options=OPTIONS)
    assert score(task, "The answer is (B).") == 1.0
    assert score(task, "Answer: Paris") == 1.0
    assert score(task, "Answer: C") == 0.0
    grade = graders.grade(task, task.instances[0], "no idea")
    assert grade.score == 0.0
    assert grade.extracted is None


def test_choice_letters_beyond_the_options_are_ignored():
    assert answers.choice_letter("Answer: C", ["yes", "no"]) is None


# --- numeric ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Answer: 1,234.5", 1234.5),
        ("Answer: -3", -3.0),
        ("Answer: \u22127", -7.0),
        ("Answer: 2/3", 2 / 3),
        ("Answer: 1e3", 1000.0),
        ("Answer: 1.5E-2", 0.015),
        ("Answer: $4.20", 4.2),
        ("Answer: -$5", -5.0),
        ("Answer: 25%", 25.0),
        ("Answer: 72 km/h", 72.0),
        ("Answer: 12 apples", 12.0),
        ("Answer: 5.", 5.0),
        ("Answer: x = .5", 0.5),
        ("Answer: 3 * 4 = 12", 12.0),
        ("Step 1: 5 + 5 = 10.\nAnswer: 7", 7.0),
        ("We find \\boxed{\\frac{7}{12}}", 7 / 12),
        ("The answer is 72 km/h.", 72.0),
        ("so 3 * 4 = 12", 12.0),
        ("First 10, then 20, finally 30", 30.0),
    ],
)
def test_numeric_answer_parsing(text: str, value: float):
    got, _ = answers.numeric_answer(text)
    assert got == pytest.approx(value)


@pytest.mark.parametrize(
    "text", ["Answer: seven", "Answer: 10/0", "Answer: 1, 2", "no digits here", ""]
)
def test_numeric_answer_without_a_number(text: str):
    assert answers.numeric_answer(text)[0] is None


def test_numbers_inside_words_are_not_numbers():
    assert answers.parse_number("H2O is water") is None
    assert answers.parse_number("v2 is 3") == 3.0


@pytest.mark.parametrize(
    ("reference", "submission", "tolerance", "expected"),
    [
        ("4.2", "Answer: $4.20", 1e-6, 1.0),
        ("4.2", "Answer: 4.2000001", 1e-6, 1.0),
        ("4.2", "Answer: 4.3", 1e-6, 0.0),
        ("7/12", "Answer: 0.5833333333", 1e-6, 1.0),
        ("7/12", "Answer: 7/12", 1e-6, 1.0),
        ("0.583", "Answer: 7/12", 1e-6, 0.0),
        ("0.583", "Answer: 7/12", 1e-3, 1.0),
        ("1e9", "Answer: 1,000,000,100", 1e-6, 1.0),  # relative tolerance
        ("0", "Answer: 0.0000001", 1e-6, 1.0),  # absolute tolerance near zero
        ("1234.5", "Answer: 1,234.5", 1e-6, 1.0),
        ("-3", "Answer: 3", 1e-6, 0.0),
        ("1000", "Answer: 1e3", 1e-6, 1.0),
        ("1000", "Answer: 1e999999", 1e-6, 0.0),
        ("36", "Answer: thirty-six", 1e-6, 0.0),
    ],
)
def test_numeric_grader(reference: str, submission: str, tolerance: float, expected: float):
    task = make_task("numeric", reference, tolerance=tolerance)
    assert score(task, submission) == expected


# --- regex --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("submission", "expected"),
    [
        ("Answer: red-orange-yellow", 1.0),
        ("red-orange-yellow", 1.0),
        ("  red-orange-yellow \n", 1.0),
        ("Sure!\nAnswer: **red-orange-yellow**.", 1.0),
        ("Answer: red-orange-yellow-green", 0.0),  # fullmatch, not search
        ("Answer: Red-Orange-Yellow", 0.0),
        ("Answer: red orange yellow", 0.0),
        ("Sure! red-orange-yellow", 0.0),
    ],
)
def test_regex_fullmatches_the_final_answer(submission: str, expected: float):
    task = make_task("regex", None, pattern="[a-z]+-[a-z]+-[a-z]+")
    assert score(task, submission) == expected


def test_regex_inline_flags_allow_search_semantics():
    task = make_task("regex", None, pattern="(?is).*\\bplease\\b.*")
    assert score(task, "Could you PLEASE\nhelp?") == 1.0
    assert score(task, "Could you help?") == 0.0


# --- python -------------------------------------------------------------------------

LENGTH_CODE = "def score(instance, submission):\n    return min(1.0, len(submission) / 10)\n"
CRASH_CODE = "def score(instance, submission):\n    raise ValueError('broken task')\n"
ID_CODE = "def score(instance, submission):\n    return 1.0 if instance['id'] == 'i0' else 0.0\n"


@pytest.fixture
def python_grader() -> PythonGrader:
    limits = SandboxLimits(cpu_seconds=2, wall_seconds=10)
    return PythonGrader(limits=limits, allow_unisolated=sandbox.isolation() is None)


def test_python_grader_scores_with_the_tasks_code(python_grader: PythonGrader):
    task = make_task("python", None, score_code=LENGTH_CODE)
    assert python_grader.grade(task, task.instances[0], "12345").score == 0.5
    id_task = make_task("python", None, score_code=ID_CODE)
    assert python_grader.grade(id_task, id_task.instances[0], "x").score == 1.0
    assert python_grader.grade(id_task, id_task.instances[1], "x").score == 0.0


def test_python_grader_marks_broken_score_code_as_a_failed_grade(python_grader: PythonGrader):
    task = make_task("python", None, score_code=CRASH_CODE)
    grade = python_grader.grade(task, task.instances[0], "anything")
    assert grade.failed
    assert grade.score == 0.0
    assert "crashed" in grade.reason
    assert "broken task" in grade.reason
    assert not grade.transient  # the task's own code: asking again gives the same


SLEEP_CODE = "import time\ndef score(instance, submission):\n    time.sleep(5)\n    return 1.0\n"
SPIN_CODE = "def score(instance, submission):\n    while True:\n        pass\n"


def test_a_wall_clock_kill_by_the_host_is_a_transient_grade():
    # The real sandbox kills the call at its wall-clock limit before the CPU limit is hit:
    # the host's verdict, which a busy machine can cause (graders.host_failure).
    grader = PythonGrader(limits=SandboxLimits(cpu_seconds=5, wall_seconds=1))
    task = make_task("python", None, score_code=SLEEP_CODE)
    if sandbox.isolation() is None:
        pytest.skip("no sandbox isolation works on this machine")
    grade = grader.grade(task, task.instances[0], "x")
    assert grade.failed and grade.transient
    assert "wall-clock limit" in grade.reason


def test_the_cpu_limit_of_the_score_code_is_a_final_grade():
    grader = PythonGrader(limits=SandboxLimits(cpu_seconds=1, wall_seconds=20))
    task = make_task("python", None, score_code=SPIN_CODE)
    if sandbox.isolation() is None:
        pytest.skip("no sandbox isolation works on this machine")
    grade = grader.grade(task, task.instances[0], "x")
    assert grade.failed and not grade.transient
    assert "CPU time limit" in grade.reason


def test_a_sandbox_that_cannot_start_is_a_transient_grade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    if sandbox.isolation() is None:  # probed (and cached) while the host still works
        pytest.skip("no sandbox isolation works on this machine")
    # The host cannot make the sandbox's scratch folder (a full or missing /tmp).
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))
    task = make_task("python", None, score_code=LENGTH_CODE)
    grade = graders.get("python").grade(task, task.instances[0], "12345")
    assert grade.failed and grade.transient
    assert "sandbox_error" in grade.reason


def test_python_grader_refuses_without_isolation(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(sandbox, "isolation", lambda: None)
    task = make_task("python", None, score_code=LENGTH_CODE)
    with pytest.raises(SandboxUnavailableError, match="allow_unisolated"):
        graders.get("python").grade(task, task.instances[0], "12345")
    opted_in = PythonGrader(allow_unisolated=True)
    assert opted_in.grade(task, task.instances[0], "12345").score == 0.5


def test_python_grader_passes_the_instance_as_a_plain_dict(python_grader: PythonGrader):
    code = (
        "def score(instance, submission):\n"
        "    keys = sorted(instance)\n"
        "    expected = ['id', 'instruction', 'options', 'reference']\n"
        "    ok = keys == expected and instance['id'] == 'i0'\n"
        "    return 1.0 if ok else 0.0\n"
    )
    task = make_task("python", "ref", score_code=code)
    assert python_grader.grade(task, task.instances[0], "x").score == 1.0
