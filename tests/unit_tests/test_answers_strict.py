"""Strict answer extraction: one table of responses that must give an answer or none.

The first six rows are the lenient readings issue 10 found: before the strict module
each gave a letter or number; now each gives the right answer or none.
"""

import pytest

from acdc.agents import answers

OPTIONS = ["London", "Paris", "Berlin", "Madrid"]
ECHO = "Which city is the capital of France?\nA) London\nB) Paris\nC) Rome\nD) Berlin"

# (kind, response, expected): kind "choice" -> letter, "number" -> float, "text" -> str.
CASES: list[tuple[str, str, object]] = [
    # The six lenient readings of the issue.
    ("choice", "Answer: (A) or (C)", None),
    ("choice", "Answer: A, B, C", None),
    ("choice", ECHO, None),
    ("choice", "Option (A) is wrong, so the answer must be C", "C"),
    ("choice", "I think the answer is not London.", None),
    ("number", "Answer: In 2 hours she earns 30", 30.0),
    # Choice: must extract.
    ("choice", "Answer: B", "B"),
    ("choice", "Answer: (b)", "B"),
    ("choice", "**Answer:** **C**", "C"),
    ("choice", "Answer: B) Paris", "B"),
    ("choice", "Answer: Paris", "B"),
    ("choice", "The answer is (B).", "B"),
    ("choice", "the answer is b.", "B"),
    ("choice", "I first thought A.\nAnswer: D", "D"),
    ("choice", "Answer: A\nOn reflection...\nAnswer: C", "C"),
    ("choice", "Let me see. A is London... Answer: D", "D"),
    ("choice", "Answer: B. A is London, so it cannot be A.", "B"),
    ("choice", "(A) is wrong, so the answer is (B)", "B"),
    ("choice", "Reasoning...\nOption C is right", "C"),
    ("choice", "I think it's Paris.", "B"),
    ("choice", "\\boxed{D}", "D"),
    ("choice", "A) London: no\nB) Paris: yes\nC) Berlin: no\nSo B.", "B"),
    ("choice", "Answer:\n(D)", "D"),
    # Choice: must refuse.
    ("choice", "Answer: London or Paris", None),
    ("choice", "Answer: A and B", None),
    ("choice", "Answer: B (or maybe D)", None),
    ("choice", "Answer: not A", None),
    ("choice", "Answer: none of them", None),
    ("choice", "Answer: E", None),
    ("choice", "the answer is a bird", None),
    ("choice", "I don't know", None),
    ("choice", "Answer: A) London B) Paris C) Berlin D) Madrid", None),
    ("choice", "The options are:\n(A) London\n(B) Paris", None),
    ("choice", "", None),
    # Numbers: must extract.
    ("number", "Answer: 1,234.5", 1234.5),
    ("number", "Answer: 1 234 567 people", 1234567.0),
    ("number", "Answer: 12 apples", 12.0),
    ("number", "Answer: 72 km/h", 72.0),
    ("number", "Answer: 5 m^2", 5.0),
    ("number", "Answer: $4.20", 4.2),
    ("number", "Answer: -$5", -5.0),
    ("number", "Answer: 25%", 25.0),
    ("number", "Answer: 3 * 4 = 12", 12.0),
    ("number", "Answer: 30. She worked 2 hours.", 30.0),
    ("number", "Step 1: 5 + 5 = 10.\nAnswer: 7", 7.0),
    ("number", "We find \\boxed{\\frac{7}{12}}", 7 / 12),
    ("number", "The answer is 72 km/h.", 72.0),
    ("number", "Answer: approx. 5 litres", 5.0),
    # Numbers: must refuse.
    ("number", "Answer: 1, 2", None),
    ("number", "Answer: 3 or 4", None),
    ("number", "Answer: not 5", None),
    ("number", "Answer: seven", None),
    ("number", "Answer: 10/0", None),
    # Free text.
    ("text", "Some thoughts.\nAnswer: **Canberra**.", "Canberra"),
    ("text", "Answer: Rome\nWait.\nAnswer: Paris", "Paris"),
    ("text", "So the final answer is Iron. Iron is a metal.", "Iron"),
    ("text", "   \n  ", None),
]


def _extract(kind: str, text: str, truncated: bool = False) -> object:
    if kind == "choice":
        return answers.choice_letter(text, OPTIONS, truncated=truncated)
    if kind == "number":
        return answers.numeric_answer(text, truncated=truncated)[0]
    return answers.final_answer(text, truncated=truncated)


@pytest.mark.parametrize(("kind", "text", "expected"), CASES)
def test_strict_extraction(kind: str, text: str, expected: object):
    got = _extract(kind, text)
    if isinstance(expected, float):
        assert got == pytest.approx(expected)
    else:
        assert got == expected


def test_the_table_covers_both_directions():
    refusals = [c for c in CASES if c[2] is None]
    assert len(CASES) >= 40 and len(refusals) >= 15 and len(CASES) - len(refusals) >= 25


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("choice", "Let me compare the cities. Paris is in France, so"),
        ("number", "First 10 + 20 = 30, then 30 * 2 is"),
        ("text", "Thinking about Canberra and"),
    ],
)
def test_a_response_cut_before_its_answer_line_is_unanswered(kind: str, text: str):
    assert _extract(kind, text, truncated=False) is not None  # the lenient last-line guess
    assert _extract(kind, text, truncated=True) is None
    assert not answers.has_answer(text)


def test_a_truncated_response_with_an_answer_line_keeps_it():
    assert answers.choice_letter("Answer: B\nExplanation: Paris is", OPTIONS, truncated=True) == "B"
    assert answers.has_answer("Answer: B\nExplanation: Paris is")


STATEMENTS: list[tuple[str, str | None]] = [
    ("The capital city of Australia is Canberra.", "Canberra"),
    ("The chemical element with the symbol Fe is Iron.", "Iron"),
    ("The chemical formula of water is **H2O**.", "H2O"),
    ("The author of 'Pride and Prejudice' is Jane Austen.", "Jane Austen"),
    ("The capital of Australia is not Canberra.", None),
    ("It is Sydney or Canberra.", None),
    ("The colours are red, orange and yellow.", None),
    ("Canberra is small. The capital is Sydney.", None),
    ("Canberra", None),
]


@pytest.mark.parametrize(("sentence", "expected"), STATEMENTS)
def test_a_plain_statement_gives_what_it_states(sentence: str, expected: str | None):
    assert answers.stated_value(sentence) == expected


def test_exact_grading_reads_a_last_line_statement_but_an_answer_line_still_decides():
    from acdc.agents.graders import ExactGrader
    from acdc.tasks import load_tasks, seed_tasks_dir

    task = next(t for t in load_tasks(seed_tasks_dir()) if t.id == "seed-knowledge-short-answer")
    capital = next(i for i in task.instances if i.reference == "Canberra")
    grade = ExactGrader().grade
    # What the 135M seed writes: graded 0 before, though it states the right city.
    assert grade(task, capital, "The capital city of Australia is Canberra.").score == 1.0
    assert grade(task, capital, "The capital city of Australia is Sydney.").score == 0.0
    assert grade(task, capital, "The capital of Australia is not Canberra.").score == 0.0
    assert grade(task, capital, "Answer: Sydney\nThe capital is Canberra.").score == 0.0
