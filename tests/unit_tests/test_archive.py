"""Skill vectors, fitness and survivor selection, checked against hand-computed cases."""

import numpy as np
import pytest

from acdc.population.archive import (
    METHODS,
    difficulty_weights,
    dns_scores,
    fitness,
    known_matrix,
    select_survivors,
    skill_matrix,
)


def bools(rows: list[str]) -> np.ndarray:
    """Skill matrix from strings like "1100", one per expert."""
    return np.array([[c == "1" for c in row] for row in rows], dtype=bool)


# Worked example used by several tests. Tasks t1..t4.
#
#        t1 t2 t3 t4   passed  fitness
#   A     1  1  1  0     3      0.75
#   B     1  1  0  0     2      0.50   (everything B does, A does too)
#   C     0  0  0  1     1      0.25   (the only one solving t4)
#   D     1  0  0  0     1      0.25   (everything D does, A and B do too)
#
# d_t = share failing: t1 {C} 1/4, t2 {C, D} 2/4, t3 {B, C, D} 3/4, t4 {A, B, D} 3/4
# sum d = 0.25 + 0.5 + 0.75 + 0.75 = 2.25
#
# F(A) = {}            -> 999
# F(B) = {A}           score(B, A) = 0 (B passes nothing A fails)        -> novelty 0
# F(C) = {A, B}        (D ties C on fitness but comes later, so D is not in F(C))
#                      score(C, A) = score(C, B) = 100 * d_t4 / 2.25 = 100 * 0.75 / 2.25 = 100/3
#                      k=3 > |F(C)| = 2, mean of both                    -> novelty 100/3
# F(D) = {A, B, C}     score(D, A) = 0, score(D, B) = 0,
#                      score(D, C) = 100 * d_t1 / 2.25 = 100 * 0.25 / 2.25 = 100/9
#                      k=3: mean(0, 0, 100/9) = 100/27; k=2: mean(0, 0) = 0
EXPERTS = ["A", "B", "C", "D"]
SKILLS = bools(["1110", "1100", "0001", "1000"])


def test_skill_matrix_threshold_and_missing_scores():
    scores = {("a", "t1"): 0.5, ("a", "t2"): 0.49, ("b", "t1"): 1.0}  # ("b", "t2") missing
    assert skill_matrix(scores, ["a", "b"], ["t1", "t2"]).tolist() == [
        [True, False],
        [True, False],
    ]
    # A stricter threshold flips the borderline 0.5.
    assert skill_matrix(scores, ["a", "b"], ["t1", "t2"], threshold=0.6).tolist() == [
        [False, False],
        [True, False],
    ]
    # Rows and columns follow the given orders.
    assert skill_matrix(scores, ["b", "a"], ["t2", "t1"]).tolist() == [
        [False, True],
        [False, True],
    ]


def test_fitness_and_difficulty_of_worked_example():
    assert fitness(SKILLS).tolist() == [0.75, 0.5, 0.25, 0.25]
    assert difficulty_weights(SKILLS).tolist() == [0.25, 0.5, 0.75, 0.75]


def test_fitness_without_tasks_is_zero():
    assert fitness(np.zeros((3, 0), dtype=bool)).tolist() == [0.0, 0.0, 0.0]


def test_dns_scores_of_worked_example():
    assert dns_scores(SKILLS) == pytest.approx([999.0, 0.0, 100 / 3, 100 / 27])
    # k=2 keeps only D's two zero scores (against A and B).
    assert dns_scores(SKILLS, k=2) == pytest.approx([999.0, 0.0, 100 / 3, 0.0])
    assert dns_scores(SKILLS, fittest_score=5.0)[0] == 5.0


def test_weak_unique_expert_survives_stronger_redundant_one():
    selection = select_survivors(EXPERTS, SKILLS, size=2)
    # C (fitness 0.25, novelty 100/3) beats B (fitness 0.5, novelty 0).
    assert selection.survivors == ["A", "C"]
    assert selection.scores["B"] == 0.0
    assert selection.scores["C"] == pytest.approx(100 / 3)
    assert selection.fitness == {"A": 0.75, "B": 0.5, "C": 0.25, "D": 0.25}


def test_top_fitness_keeps_the_strongest():
    # Same archive: B (0.5) now survives; C and D tie at 0.25, so the third place goes
    # to C, which comes first in the input.
    assert select_survivors(EXPERTS, SKILLS, size=2, method="top_fitness").survivors == ["A", "B"]
    selection = select_survivors(EXPERTS, SKILLS, size=3, method="top_fitness")
    assert selection.survivors == ["A", "B", "C"]
    assert selection.scores == selection.fitness
    reordered = select_survivors(["D", "A", "B", "C"], SKILLS[[3, 0, 1, 2]], 3, "top_fitness")
    assert reordered.survivors == ["A", "B", "D"]


def test_equal_fitness_first_one_is_undominated():
    #        t1 t2   passed
    #   E1    1  0     1
    #   E2    1  0     1     same skills as E1
    #   E3    0  1     1
    # All equal fitness. d = [1/3, 2/3], sum 1.
    # F(E1) = {}        -> 999
    # F(E2) = {E1}      score(E2, E1) = 0                      -> 0
    # F(E3) = {E1, E2}  score(E3, E1) = score(E3, E2) = 100 * (2/3) / 1 -> 200/3
    skills = bools(["10", "10", "01"])
    assert dns_scores(skills) == pytest.approx([999.0, 0.0, 200 / 3])
    assert select_survivors(["E1", "E2", "E3"], skills, size=2).survivors == ["E1", "E3"]
    # Swapping the twins swaps which one stays undominated.
    assert select_survivors(["E2", "E1", "E3"], skills[[1, 0, 2]], size=2).survivors == [
        "E2",
        "E3",
    ]


def test_novelty_ties_go_to_fitter_then_earlier_expert():
    #        t1 t2 t3   passed
    #   A     1  1  1     3    -> 999
    #   C     1  0  0     1    F = {A, B}: both pass t1 -> novelty 0
    #   B     1  1  0     2    F = {A}:    A passes t1, t2 -> novelty 0
    # C and B tie at 0; B is fitter, so B survives although C comes first.
    skills = bools(["111", "100", "110"])
    assert select_survivors(["A", "C", "B"], skills, size=2).survivors == ["A", "B"]

    #        t1 t2   passed
    #   A     1  1     2    -> 999
    #   B     1  0     1    F = {A} -> 0
    #   C     0  1     1    F = {A, B}: score(C, A) = 0, score(C, B) = 100 * d_t2 / sum d > 0,
    #                       but with k=1 only the smallest (0) counts -> 0
    # B and C tie on novelty and fitness; the earlier one in the input survives.
    skills = bools(["11", "10", "01"])
    assert select_survivors(["A", "B", "C"], skills, size=2, k=1).survivors == ["A", "B"]
    assert select_survivors(["A", "C", "B"], skills[[0, 2, 1]], size=2, k=1).survivors == [
        "A",
        "C",
    ]


def test_everyone_passes_everything():
    # d = [0, 0, 0], sum 0: every score is 0, only the first expert is undominated.
    skills = np.ones((3, 3), dtype=bool)
    assert difficulty_weights(skills).tolist() == [0.0, 0.0, 0.0]
    assert dns_scores(skills).tolist() == [999.0, 0.0, 0.0]
    assert select_survivors(["x", "y", "z"], skills, size=2).survivors == ["x", "y"]


def test_small_archive_keeps_everyone_and_reports_scores():
    selection = select_survivors(EXPERTS, SKILLS, size=10)
    # Best first: A 999, C 100/3, D 100/27, B 0.
    assert selection.survivors == ["A", "C", "D", "B"]
    assert selection.scores["D"] == pytest.approx(100 / 27)
    assert set(selection.fitness) == set(EXPERTS)


def test_methods_constant():
    assert METHODS == ("dns", "top_fitness")


@pytest.mark.parametrize(
    ("experts", "skills", "size", "method", "match"),
    [
        (EXPERTS, SKILLS, 2, "random", "unknown selection method"),
        (EXPERTS, SKILLS, 0, "dns", "at least 1"),
        (EXPERTS[:3], SKILLS, 2, "dns", "shape"),
        (EXPERTS, SKILLS[:, 0], 2, "dns", "shape"),
        (EXPERTS, SKILLS.astype(float), 2, "dns", "bool"),
        (["A", "A", "C", "D"], SKILLS, 2, "dns", "unique"),
    ],
)
def test_select_survivors_rejects_bad_input(experts, skills, size, method, match):
    with pytest.raises(ValueError, match=match):
        select_survivors(experts, skills, size, method)


def test_dns_rejects_k_below_one():
    with pytest.raises(ValueError, match="k must be at least 1"):
        dns_scores(SKILLS, k=0)


# Masking (issue 19). Tasks t1..t4; "." marks a cell never evaluated.
#
#        t1 t2 t3 t4   evaluated  passed  fitness
#   Q     1  1  0  0       4         2     0.5
#   P     1  1  .  .       2         2     1.0    (read as fails: 0.5, Q's twin)
#   R     0  0  1  0       4         1     0.25
#
# d_t over the experts evaluated on t: t1 1/3, t2 1/3, t3 1/2 (Q fails), t4 2/2.
# F(P) = {} -> 999. F(Q) = {P}: on t1, t2 (both evaluated) Q passes nothing P fails -> 0.
# F(R) = {P, Q}: score(R, P) = 0 (common t1, t2); score(R, Q) = 100 * (1/2) / (13/6).
QPR = bools(["1100", "1100", "0010"])
QPR_KNOWN = bools(["1111", "1100", "1111"])


def test_known_matrix_marks_the_scored_cells():
    scores = {("a", "t1"): 0.0, ("b", "t2"): 1.0}
    assert known_matrix(scores, ["a", "b"], ["t1", "t2"]).tolist() == [
        [True, False],
        [False, True],
    ]


def test_fitness_is_the_share_of_the_evaluated_tasks_passed():
    assert fitness(QPR, QPR_KNOWN).tolist() == [0.5, 1.0, 0.25]
    assert fitness(QPR, np.zeros_like(QPR)).tolist() == [0.0, 0.0, 0.0]  # nothing evaluated


def test_difficulty_counts_only_the_experts_evaluated_on_the_task():
    assert difficulty_weights(QPR, QPR_KNOWN) == pytest.approx([1 / 3, 1 / 3, 1 / 2, 1.0])


def test_dns_keeps_an_expert_for_what_it_passes_not_what_it_was_never_asked():
    assert dns_scores(QPR, known=QPR_KNOWN) == pytest.approx([0.0, 999.0, 100 * 0.5 / (13 / 6) / 2])
    selection = select_survivors(["Q", "P", "R"], QPR, size=2, known=QPR_KNOWN)
    assert selection.survivors == ["P", "R"]
    assert selection.fitness == {"Q": 0.5, "P": 1.0, "R": 0.25}


def test_a_cell_never_evaluated_is_no_unique_skill_of_the_other_expert():
    #        t1 t2 t3   Y was never asked t3, the only task X passes that Y does not.
    #   Y     1  1  .   fitness 1.0
    #   X     1  0  1   fitness 2/3; on the common tasks t1, t2 X adds nothing to Y -> 0
    skills = bools(["110", "101"])
    known = bools(["110", "111"])
    assert dns_scores(skills, known=known).tolist() == [999.0, 0.0]


def test_a_complete_mask_changes_nothing():
    complete = np.ones_like(SKILLS)
    assert dns_scores(SKILLS, known=complete) == pytest.approx(dns_scores(SKILLS))
    assert fitness(SKILLS, complete).tolist() == fitness(SKILLS).tolist()


def test_a_mask_of_another_shape_is_refused():
    with pytest.raises(ValueError, match="known must be a bool array"):
        select_survivors(EXPERTS, SKILLS, 2, known=np.ones((4, 3), dtype=bool))
