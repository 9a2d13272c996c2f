"""The diversity metric on hand-made answer tables, with the expected figures worked out by hand."""

import numpy as np
import pytest

from acdc.agents.graders import answer_key
from acdc.graphs.coverage_report import report_text
from acdc.graphs.diversity import diversity_line
from acdc.population.diversity import coverage_gains, greedy_gains, pairwise_disagreement
from acdc.tasks import Task

# Three experts, four questions. None: no record; "": answered, but nothing readable.
ANSWERS = [
    ["A", "B", "C", "D"],
    ["A", "B", "D", "D"],
    ["B", None, "C", ""],
]


def test_disagreement_of_a_hand_made_table() -> None:
    # Pair (0, 1): 4 questions in common, they differ on q2 only -> 1/4.
    # Pair (0, 2): q0, q2, q3 in common; differ on q0 (A/B) and q3 (D/"") -> 2/3.
    # Pair (1, 2): q0, q2, q3 in common; differ on all three -> 3/3.
    expected = (1 / 4 + 2 / 3 + 1) / 3  # = 23/36
    assert pairwise_disagreement(ANSWERS) == pytest.approx(expected)
    assert pairwise_disagreement(ANSWERS) == pytest.approx(23 / 36)


def test_identical_experts_do_not_disagree_and_pairs_without_common_questions_drop_out() -> None:
    assert pairwise_disagreement([["A", "B"], ["A", "B"]]) == 0.0
    assert pairwise_disagreement([["A"]]) == 0.0
    assert pairwise_disagreement([]) == 0.0
    # The pair (0, 2) shares no question: the mean is over the other two pairs.
    table = [["A", None], ["B", "C"], [None, "C"]]
    assert pairwise_disagreement(table) == pytest.approx((1 / 1 + 0 / 1) / 2)


def test_rows_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="one answer per question"):
        pairwise_disagreement([["A", "B"], ["A"]])


SOLVED = np.array(
    [
        [True, True, False, False],  # accuracy 1/2
        [True, False, True, False],  # accuracy 1/2
        [False, False, False, True],  # accuracy 1/4
    ]
)


def test_greedy_gains_of_a_hand_made_table() -> None:
    # Pick 1: experts 0 and 1 both add 2 of 4, equal accuracy -> lower index 0: +1/2.
    # Pick 2: expert 1 adds q2, expert 2 adds q3 (1 each); expert 1 is more accurate: +1/4.
    # Pick 3: expert 2 adds q3: +1/4. Total coverage 1.
    assert greedy_gains(SOLVED, 3) == pytest.approx([0.5, 0.25, 0.25])
    assert greedy_gains(SOLVED, 1) == pytest.approx([0.5])


def test_coverage_gains_follow_the_given_order_and_a_repeat_adds_nothing() -> None:
    assert coverage_gains(SOLVED, [2, 0, 0, 1]) == pytest.approx([0.25, 0.5, 0.0, 0.25])
    assert coverage_gains(np.zeros((2, 0), dtype=bool), [0, 1]) == []


def test_answers_are_compared_as_the_graders_read_them() -> None:
    task = Task.model_validate(
        {
            "id": "t1",
            "name": "capitals",
            "description": "Pick the capital.",
            "capability": "geography",
            "subject": "geography",
            "difficulty": 1,
            "grading": "choice",
            "instances": [
                {
                    "id": f"i{k}",
                    "instruction": "Capital of France?",
                    "options": ["Rome", "Paris"],
                    "reference": "B",
                }
                for k in range(3)
            ],
        }
    )
    instance = task.instances[0]
    assert answer_key(task, instance, "Answer: (B).") == answer_key(task, instance, "B")
    assert answer_key(task, instance, "I do not know") == ""


def test_the_printed_lines_show_the_figures() -> None:
    line = diversity_line({"disagreement": 0.25, "coverage_gains": [0.5, 0.25]})
    assert "disagreement 0.25" in line and "+50%, +25%" in line
    assert diversity_line({}) == ""
    force = {
        "coverage": 0.75,
        "run_coverage": None,
        "best_of_n": {"judge": 0.5, "majority": 0.5, "tournament": 0.5},
        "judge_fallbacks": 0,
        "members": ["a", "b"],
        "temperature": 0.0,
        "disagreement": 0.5,
        "coverage_gains": [0.5, 0.25],
    }
    result = {
        "benchmark": "b.jsonl",
        "questions": 4,
        "run": "r",
        "n": 2,
        "answers": {"generated": 0, "cached": 8},
        "members": {"a": 0.5, "b": 0.5},
        "seed": {"expert_id": "base", "temperature": 0.0, "accuracy": 0.5},
        "pool_tasks": 3,
        "task_forces": {"greedy": force},
    }
    assert "disagreement 0.50; coverage added per member: +50%, +25%" in report_text(result)
