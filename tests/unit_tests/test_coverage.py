"""Task-force coverage and the greedy pick, checked against hand-worked skill matrices."""

import random

import numpy as np
import pytest

from acdc.population.coverage import (
    coverage,
    coverage_by_capability,
    greedy_task_force,
    random_task_force,
    top_fitness_task_force,
)


def bools(rows: list[str]) -> np.ndarray:
    """Solved matrix from strings like "1100", one per expert."""
    return np.array([[c == "1" for c in row] for row in rows], dtype=bool)


# Worked example used by several tests. Questions q1..q6.
#
#        q1 q2 q3 q4 q5 q6   solved  fitness
#   0     1  1  1  1  0  0     4      4/6   strong
#   1     1  1  1  0  0  0     3      3/6   second fittest, but a subset of 0
#   2     0  0  0  0  1  1     2      2/6   the only one solving q6
#   3     0  0  0  0  1  0     1      1/6   a subset of 2
#
# Greedy, n=2: gains (4, 3, 2, 1) -> 0; then uncovered {q5, q6}: gains (-, 0, 2, 1) -> 2.
#   Coverage of [0, 2] is 6/6; the two fittest, [0, 1], cover only 4/6.
# Greedy, n=3: after [0, 2] everything is covered, gains (-, 0, -, 0); fill by fitness -> 1.
SOLVED = bools(["111100", "111000", "000011", "000010"])
FITNESS = [4 / 6, 3 / 6, 2 / 6, 1 / 6]
CAPABILITIES = ["math", "math", "math", "code", "code", "code"]


def test_coverage_counts_columns_solved_by_any_member():
    assert coverage(SOLVED, [0]) == pytest.approx(4 / 6)
    assert coverage(SOLVED, [0, 1]) == pytest.approx(4 / 6)  # 1 adds nothing to 0
    assert coverage(SOLVED, [0, 2]) == pytest.approx(1.0)
    assert coverage(SOLVED, [2, 3]) == pytest.approx(2 / 6)
    assert coverage(SOLVED, [2, 2, 3]) == pytest.approx(2 / 6)  # repeats count once


def test_coverage_is_zero_without_members_or_columns():
    assert coverage(SOLVED, []) == 0.0
    assert coverage(np.zeros((3, 0), dtype=bool), [0, 1]) == 0.0


def test_coverage_leaves_out_the_columns_no_member_was_evaluated_on():
    # Member 0 was evaluated on q1..q3 only, member 2 on q5 only. Together they were
    # evaluated on q1, q2, q3, q5 and solve all four: 100 %, where reading the holes as
    # fails gave 4 of 6.
    known = np.ones_like(SOLVED)
    known[[0, 2], 3:] = False
    known[2, :] = [False, False, False, False, True, False]
    assert coverage(SOLVED, [0, 2], known) == pytest.approx(1.0)
    assert coverage(SOLVED, [2], known) == pytest.approx(1.0)
    assert coverage(SOLVED, [1], known) == pytest.approx(0.5)  # complete row: q1..q3 of 6
    assert coverage(SOLVED, [3], np.zeros_like(SOLVED)) == 0.0  # nothing evaluated
    with pytest.raises(ValueError, match="known must be a bool array"):
        coverage(SOLVED, [0], np.ones((4, 2), dtype=bool))


def test_coverage_by_capability_breaks_coverage_down():
    # 1 solves q1..q3 (all math), none of q4..q6 (code).
    assert coverage_by_capability(SOLVED, [1], CAPABILITIES) == {"math": 1.0, "code": 0.0}
    # 0 adds q4: 1 of the 3 code columns.
    by_cap = coverage_by_capability(SOLVED, [0], CAPABILITIES)
    assert by_cap["math"] == pytest.approx(1.0)
    assert by_cap["code"] == pytest.approx(1 / 3)
    # 2 and 3 together: q5, q6 -> 2/3 of code, no math.
    by_cap = coverage_by_capability(SOLVED, [2, 3], CAPABILITIES)
    assert by_cap == {"math": 0.0, "code": pytest.approx(2 / 3)}
    assert coverage_by_capability(SOLVED, [], CAPABILITIES) == {"math": 0.0, "code": 0.0}


def test_coverage_by_capability_keeps_first_appearance_order_and_only_labels():
    # Interleaved labels: q1 code, q2 math, q3 code, q4 art, q5 math, q6 code.
    labels = ["code", "math", "code", "art", "math", "code"]
    # 0 solves q1..q4: code {q1, q3} of {q1, q3, q6} = 2/3, math {q2} of {q2, q5} = 1/2,
    # art {q4} of {q4} = 1.
    by_cap = coverage_by_capability(SOLVED, [0], labels)
    assert list(by_cap) == ["code", "math", "art"]  # no "overall" key
    assert by_cap["code"] == pytest.approx(2 / 3)
    assert by_cap["math"] == pytest.approx(1 / 2)
    assert by_cap["art"] == pytest.approx(1.0)


def test_greedy_prefers_complementary_expert_over_redundant_fitter_one():
    picked = greedy_task_force(SOLVED, 2, FITNESS)
    assert picked == [0, 2]
    assert coverage(SOLVED, picked) == pytest.approx(1.0)
    # The fitness baseline takes the redundant 1 and loses coverage.
    baseline = top_fitness_task_force(FITNESS, 2)
    assert baseline == [0, 1]
    assert coverage(SOLVED, baseline) < coverage(SOLVED, picked)


def test_greedy_fills_by_fitness_once_coverage_saturates():
    # After [0, 2] nothing is left to cover; 1 (3/6) beats 3 (1/6) on fitness.
    assert greedy_task_force(SOLVED, 3, FITNESS) == [0, 2, 1]
    # Reversing the fitness of the leftovers flips the fill order.
    assert greedy_task_force(SOLVED, 4, [4 / 6, 0.0, 2 / 6, 0.5]) == [0, 2, 3, 1]


def test_greedy_returns_everyone_when_n_exceeds_experts():
    picked = greedy_task_force(SOLVED, 10, FITNESS)
    assert picked == [0, 2, 1, 3]


def test_greedy_without_columns_picks_by_fitness():
    assert greedy_task_force(np.zeros((3, 0), dtype=bool), 2, [0.1, 0.9, 0.5]) == [1, 2]


def test_greedy_gain_outranks_fitness():
    # 0 covers 3 columns with fitness 0.1; 1 covers 1 with fitness 0.9. Gain decides: 0.
    solved = bools(["1110", "1000"])
    assert greedy_task_force(solved, 1, [0.1, 0.9]) == [0]


def test_greedy_breaks_gain_ties_by_fitness():
    #        q1 q2 q3 q4   fitness
    #   0     1  1  0  0     0.9
    #   1     0  0  1  1     0.2
    #   2     0  0  1  1     0.7
    # Step 1: gains (2, 2, 2), fittest is 0. Step 2: gains (-, 2, 2), 2 is fitter than 1.
    solved = bools(["1100", "0011", "0011"])
    assert greedy_task_force(solved, 2, [0.9, 0.2, 0.7]) == [0, 2]
    # With 1 fitter than 2 the pick flips.
    assert greedy_task_force(solved, 2, [0.9, 0.7, 0.2]) == [0, 1]


def test_greedy_breaks_gain_and_fitness_ties_by_lower_index():
    # Same matrix, equal fitness: step 1 takes index 0, step 2 takes 1 over 2.
    solved = bools(["1100", "0011", "0011"])
    assert greedy_task_force(solved, 2, [0.5, 0.5, 0.5]) == [0, 1]
    # Identical rows 0 and 1 come first now: step 1 is a three-way tie, won by 0;
    # step 2 takes 2, as 1 adds nothing to 0.
    solved = bools(["0011", "0011", "1100"])
    assert greedy_task_force(solved, 2, [0.5, 0.5, 0.5]) == [0, 2]


# Required-member example. Questions q1..q4; 3 plays the instruct seed.
#
#        q1 q2 q3 q4   fitness
#   0     1  1  0  0     0.50
#   1     0  0  1  1     0.50
#   2     1  1  1  0     0.75
#   3     0  0  0  1     0.25   seed
REQUIRED_SOLVED = bools(["1100", "0011", "1110", "0001"])
REQUIRED_FITNESS = [0.5, 0.5, 0.75, 0.25]


def test_greedy_keeps_required_members_first():
    # Free pick, n=2: 2 (gain 3), then {q4} is left: 1 and 3 gain 1, 1 is fitter -> [2, 1].
    assert greedy_task_force(REQUIRED_SOLVED, 2, REQUIRED_FITNESS) == [2, 1]
    # Seed required: it covers q4; gains (2, 1, 3) -> 2. The seed stays although
    # 1 would have been picked over it.
    assert greedy_task_force(REQUIRED_SOLVED, 2, REQUIRED_FITNESS, required=[3]) == [3, 2]
    # Several required, in the given order; then {q1, q2} left: 0 and 2 gain 2, 2 fitter.
    picked = greedy_task_force(REQUIRED_SOLVED, 3, REQUIRED_FITNESS, required=[1, 3])
    assert picked == [1, 3, 2]


def test_greedy_with_required_filling_the_whole_task_force():
    # The weakest pair, kept as asked: nothing is added or swapped.
    assert greedy_task_force(REQUIRED_SOLVED, 2, REQUIRED_FITNESS, required=[3, 0]) == [3, 0]


def test_greedy_accepts_numpy_fitness():
    assert greedy_task_force(SOLVED, 2, np.array(FITNESS)) == [0, 2]


def test_top_fitness_orders_by_fitness_then_index():
    assert top_fitness_task_force([0.5, 0.9, 0.5, 0.1], 3) == [1, 0, 2]
    assert top_fitness_task_force([0.5, 0.9], 5) == [1, 0]


def test_random_task_force_is_reproducible_and_distinct():
    first = random_task_force(20, 5, random.Random(7))
    again = random_task_force(20, 5, random.Random(7))
    assert first == again
    assert len(first) == 5
    assert len(set(first)) == 5
    assert all(0 <= i < 20 for i in first)
    # The seed matters: several other seeds do not all give the same draw.
    others = {tuple(random_task_force(20, 5, random.Random(s))) for s in range(8)}
    assert len(others) > 1


def test_random_task_force_caps_at_population_size():
    picked = random_task_force(4, 10, random.Random(0))
    assert sorted(picked) == [0, 1, 2, 3]
    assert random_task_force(0, 3, random.Random(0)) == []


@pytest.mark.parametrize("n", [0, -1])
def test_task_force_size_must_be_positive(n):
    with pytest.raises(ValueError, match="at least 1"):
        greedy_task_force(SOLVED, n, FITNESS)
    with pytest.raises(ValueError, match="at least 1"):
        top_fitness_task_force(FITNESS, n)
    with pytest.raises(ValueError, match="at least 1"):
        random_task_force(4, n, random.Random(0))


def test_random_task_force_rejects_negative_population():
    with pytest.raises(ValueError, match="non-negative"):
        random_task_force(-1, 2, random.Random(0))


def test_greedy_rejects_more_required_than_places():
    with pytest.raises(ValueError, match="do not fit"):
        greedy_task_force(SOLVED, 1, FITNESS, required=[0, 2])


@pytest.mark.parametrize("bad", [4, -1])
def test_out_of_range_indices_are_rejected(bad):
    with pytest.raises(ValueError, match="out of range"):
        greedy_task_force(SOLVED, 2, FITNESS, required=[bad])
    with pytest.raises(ValueError, match="out of range"):
        coverage(SOLVED, [0, bad])
    with pytest.raises(ValueError, match="out of range"):
        coverage_by_capability(SOLVED, [bad], CAPABILITIES)


def test_greedy_rejects_repeated_required():
    with pytest.raises(ValueError, match="distinct"):
        greedy_task_force(SOLVED, 3, FITNESS, required=[2, 2])


def test_shape_mismatches_are_rejected():
    with pytest.raises(ValueError, match="one value per expert"):
        greedy_task_force(SOLVED, 2, FITNESS[:3])
    with pytest.raises(ValueError, match="one label per column"):
        coverage_by_capability(SOLVED, [0], CAPABILITIES[:5])


def test_non_bool_or_non_2d_solved_is_rejected():
    with pytest.raises(ValueError, match="2-D bool"):
        coverage(SOLVED.astype(int), [0])
    with pytest.raises(ValueError, match="2-D bool"):
        coverage(SOLVED[0], [0])
    with pytest.raises(ValueError, match="2-D bool"):
        greedy_task_force(SOLVED.astype(float), 2, FITNESS)


def test_greedy_rejects_non_finite_fitness():
    with pytest.raises(ValueError, match="finite"):
        greedy_task_force(SOLVED, 2, [float("nan"), 0.5, 0.5, 0.5])
