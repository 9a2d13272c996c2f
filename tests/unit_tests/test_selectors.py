"""Best-of-N selectors: majority votes, shuffled judge picks, knockouts, and fallbacks."""

import asyncio
import json
import random
import re
from collections import Counter

import pytest

from acdc.agents.judge import Judge
from acdc.agents.selectors import majority, select
from acdc.agents.structured import caller_for
from acdc.context import Context
from tests.stub_openai import Reply, StubOpenAI

ALWAYS_FIRST = json.dumps({"reasoning": "I always like the first one.", "best": 1})


def judge(stub: StubOpenAI) -> Judge:
    ctx = Context(judge_base_url=stub.url, judge_model="stub", judge_retries=0)
    return Judge(caller_for(ctx, "judge", stub.url))


def run_select(reply: Reply, selector: str, answers: list[str], seed: int = 0):
    with StubOpenAI([], default=reply) as stub:
        pick = asyncio.run(
            select(selector, "q?", answers, judge=judge(stub), rng=random.Random(seed))
        )
    return pick, len(stub.requests)


def test_majority_votes_on_normalized_final_answers():
    answers = [
        "Rome, I think.\nAnswer: Rome",
        "It is **Paris**.\nAnswer: **Paris**.",
        "no idea",
        "answer: paris",
    ]
    pick = majority(answers)
    assert pick.index == 1 and pick.selector == "majority"
    assert "2 of 4 answers say 'paris'" in pick.why


def test_majority_ties_go_to_member_order_or_to_the_seeded_rng():
    answers = ["Answer: 3", "Answer: 4", "Answer: 4", "Answer: 3"]
    pick = majority(answers)
    assert pick.index == 0 and "broken by member order" in pick.why
    picks = {majority(answers, rng=random.Random(seed)).index for seed in range(20)}
    assert picks == {0, 1}
    assert majority(answers, rng=random.Random(5)) == majority(answers, rng=random.Random(5))


def test_majority_with_nothing_extractable_returns_the_first_answer():
    pick = majority(["", "   "])
    assert pick.index == 0 and "no final answer" in pick.why


def test_judge_pick_is_shuffled_so_a_position_biased_judge_spreads_its_picks():
    answers = ["Answer: 1", "Answer: 2", "Answer: 3", "Answer: 4"]
    with StubOpenAI([], default=ALWAYS_FIRST) as stub:
        j, rng = judge(stub), random.Random(0)
        picks = Counter(
            asyncio.run(select("judge", "q?", answers, judge=j, rng=rng)).index for _ in range(80)
        )
    assert set(picks) == {0, 1, 2, 3}
    assert max(picks.values()) < 35  # about 20 each; without the shuffle all 80 go to 0


def test_judge_pick_maps_the_shown_number_back_to_the_member():
    answers = ["Answer: Lyon", "Answer: Paris", "Answer: Nice"]

    def pick_paris(body: dict) -> str:
        shown = re.search(r"<candidate (\d+)>\nAnswer: Paris\n", body["messages"][-1]["content"])
        assert shown is not None
        return json.dumps({"reasoning": "Paris is the capital.", "best": int(shown.group(1))})

    for seed in range(5):
        pick, _ = run_select(pick_paris, "judge", answers, seed)
        assert (pick.index, pick.selector, pick.why) == (1, "judge", "Paris is the capital.")


def test_malformed_judge_output_falls_back_to_majority_with_the_reason():
    answers = ["Answer: 3", "Answer: 4", "Answer: 4"]
    pick, _ = run_select("this is not JSON", "judge", answers)
    assert pick.index == 1 and pick.selector == "majority"
    assert pick.why.startswith("judge failed (malformed output")
    assert "2 of 3 answers say '4'" in pick.why


def test_identical_answers_need_no_judge():
    pick, requests = run_select(ALWAYS_FIRST, "judge", ["Answer: 4"] * 3)
    assert (pick.index, requests) == (0, 0)


def test_tournament_plays_n_minus_one_shuffled_matches_and_the_best_answer_wins():
    answers = [f"Answer: {n}" for n in (3, 7, 1, 42, 5)]

    def pick_largest(body: dict) -> str:
        prompt = body["messages"][-1]["content"]
        shown = {int(n): int(v) for n, v in re.findall(r"<candidate (\d+)>\nAnswer: (\d+)", prompt)}
        assert len(shown) == 2  # each match shows exactly two answers
        best = max(shown, key=lambda n: shown[n])
        return json.dumps({"reasoning": f"{shown[best]} is larger.", "best": best})

    pick, requests = run_select(pick_largest, "tournament", answers)
    assert pick.index == 3 and pick.selector == "tournament"
    assert requests == len(answers) - 1
    assert "knockout in 3 round(s)" in pick.why and "42 is larger" in pick.why


def test_tournament_pairs_are_shuffled_so_position_bias_does_not_decide():
    answers = ["Answer: a", "Answer: b", "Answer: c", "Answer: d"]
    with StubOpenAI([], default=ALWAYS_FIRST) as stub:
        j, rng = judge(stub), random.Random(1)
        winners = Counter(
            asyncio.run(select("tournament", "q?", answers, judge=j, rng=rng)).index
            for _ in range(60)
        )
    assert set(winners) == {0, 1, 2, 3}


def test_a_tournament_match_the_judge_fails_goes_to_majority_support():
    answers = ["Answer: 1", "Answer: 2", "Answer: 2", "Answer: 3"]
    pick, requests = run_select(500, "tournament", answers)
    # 1 vs 2 -> 2 (support 2 vs 1); 2 vs 3 -> 2; the final is the same answer twice.
    assert pick.index == 1 and requests == 2
    assert "judge failed on 1 vs 2" in pick.why and "judge failed on 3 vs 4" in pick.why


def test_selector_errors_are_clear():
    with pytest.raises(ValueError, match="unknown selector 'best'"):
        asyncio.run(select("best", "q", ["a"], judge=None, rng=random.Random(0)))
    with pytest.raises(ValueError, match="the judge selector needs a judge"):
        asyncio.run(select("judge", "q", ["a"], judge=None, rng=random.Random(0)))
    with pytest.raises(ValueError, match="at least one answer"):
        majority([])
