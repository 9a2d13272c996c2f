"""Best-of-N selectors: which of a task force's N answers to one question goes back.

A task force answers with N answers (one per member) and must return one. The selector
is chosen per call:

- ``judge``: the judge model reads all N answers and names the best. The answers are
  shuffled first (``Judge.select``), so a judge that favours a position cannot favour
  a member.
- ``majority``: each answer's final answer is extracted and normalized, and the most
  common one wins (self-consistency); answers with nothing extractable do not vote.
  Ties between equally common answers are broken by the seeded ``rng`` when one is
  given, else by member order (the tied answer given by the earliest member wins). The
  winning index is the first member giving the winning answer.
- ``tournament``: single elimination in member order: members 1 vs 2, 3 vs 4, ...; an
  odd one out gets a bye. Each match is a judge pick between the two answers, shuffled.

The judge may fail (malformed or refused output after its retries). The ``judge``
selector then falls back to majority, and a tournament match the judge cannot decide
goes to the contender whose final answer more members share (ties: the earlier
member); either way the reason is in ``why``. Nothing here raises on model output.
"""

import asyncio
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias, get_args

from acdc.agents.answers import final_answer
from acdc.agents.judge import Judge
from acdc.normal_form import normalize

SelectorName: TypeAlias = Literal["judge", "majority", "tournament"]
SELECTORS: tuple[str, ...] = get_args(SelectorName)

AnswerKey: TypeAlias = Callable[[str], str | None]
"""Maps a full answer to the final answer majority votes on (None: nothing to vote)."""

_SHOWN = 60
"""Characters of a winning final answer quoted in ``why``."""


def final_answer_key(text: str) -> str | None:
    """The normalized final answer of ``text`` (``Answer:`` line first), or None."""
    found = final_answer(text)
    return (normalize(found) or None) if found is not None else None


@dataclass(frozen=True)
class Pick:
    """The chosen answer and why.

    Attributes:
        index: Position of the winning answer in the caller's list.
        why: A short human-readable reason.
        selector: The selector that decided: ``majority`` when the judge failed.
        tokens: Judge tokens spent on the pick.
    """

    index: int
    why: str
    selector: str
    tokens: int = 0


def majority(
    answers: Sequence[str], key: AnswerKey = final_answer_key, rng: random.Random | None = None
) -> Pick:
    """The answer whose final answer is the most common (see the module for ties).

    Raises:
        ValueError: If ``answers`` is empty.
    """
    _check_answers(answers)
    keys = [key(answer) for answer in answers]
    votes = Counter(k for k in keys if k is not None)
    if not votes:
        return Pick(0, "no final answer could be extracted; the first member's answer", "majority")
    top = max(votes.values())
    tied = [k for k in dict.fromkeys(keys) if k is not None and votes[k] == top]
    winner = rng.choice(tied) if rng is not None else tied[0]
    why = f"{top} of {len(answers)} answers say {winner[:_SHOWN]!r}"
    if len(tied) > 1:
        rule = "the seeded rng" if rng is not None else "member order"
        why += f" (tied with {len(tied) - 1} other answer(s); broken by {rule})"
    return Pick(keys.index(winner), why, "majority")


async def judge_pick(
    judge: Judge,
    question: str,
    answers: Sequence[str],
    rng: random.Random,
    key: AnswerKey = final_answer_key,
) -> Pick:
    """The judge's pick among all answers, shown shuffled; majority if the judge fails.

    Raises:
        ValueError: If ``answers`` is empty.
    """
    _check_answers(answers)
    if len(set(answers)) == 1:
        return Pick(0, "every member gave the same answer", "judge")
    choice = await judge.select(question, answers, rng)
    if choice.index is None:
        fallback = majority(answers, key, rng)
        why = f"judge failed ({choice.reason}); majority: {fallback.why}"
        return Pick(fallback.index, why, "majority", choice.tokens)
    why = choice.reasoning.strip() or "the judge's pick"
    return Pick(choice.index, why, "judge", choice.tokens)


async def tournament(
    judge: Judge,
    question: str,
    answers: Sequence[str],
    rng: random.Random,
    key: AnswerKey = final_answer_key,
) -> Pick:
    """Single-elimination knockout of pairwise judge picks (see the module for the bracket).

    The matches of one round run concurrently; each shuffles its pair with ``rng``
    before its first await, so the draws do not depend on timing.

    Raises:
        ValueError: If ``answers`` is empty.
    """
    _check_answers(answers)
    if len(answers) == 1:
        return Pick(0, "only one answer", "tournament")
    keys = [key(answer) for answer in answers]
    support = [keys.count(k) if k is not None else 0 for k in keys]
    contenders = list(range(len(answers)))
    tokens, rounds, last_reason = 0, 0, ""
    notes: list[str] = []

    async def match(a: int, b: int) -> tuple[int, str, int]:
        """Winner of ``a`` vs ``b``, the reason, and the judge tokens spent."""
        if answers[a] == answers[b]:
            return a, "same answer", 0
        choice = await judge.select(question, [answers[a], answers[b]], rng)
        if choice.index is None:
            winner = a if support[a] >= support[b] else b
            notes.append(
                f"judge failed on {a + 1} vs {b + 1} ({choice.reason}); majority support "
                f"({support[a]} vs {support[b]}) sends {winner + 1} on"
            )
            return winner, "majority support", choice.tokens
        return (a, b)[choice.index], choice.reasoning.strip(), choice.tokens

    while len(contenders) > 1:
        rounds += 1
        pairs = list(zip(contenders[0::2], contenders[1::2], strict=False))
        results = await asyncio.gather(*(match(a, b) for a, b in pairs))
        winners = [winner for winner, _, _ in results]
        tokens += sum(spent for _, _, spent in results)
        last_reason = results[-1][1] if len(contenders) == 2 else last_reason
        if len(contenders) % 2:
            winners.append(contenders[-1])
        contenders = winners
    why = f"won a {len(answers)}-answer knockout in {rounds} round(s); final: {last_reason}"
    if notes:
        why += "; " + "; ".join(notes)
    return Pick(contenders[0], why, "tournament", tokens)


async def select(
    selector: str,
    question: str,
    answers: Sequence[str],
    *,
    judge: Judge | None,
    rng: random.Random,
    key: AnswerKey = final_answer_key,
) -> Pick:
    """Run the named selector; ``judge`` may be None only for ``majority``.

    Args:
        selector: ``judge``, ``majority`` or ``tournament``.
        question: The question as the members saw it (options included), for the judge.
        answers: The members' full answers, in member order.
        judge: The judge role.
        rng: Seeded generator for shuffles and majority ties.
        key: Final-answer extractor for majority votes (e.g. an option letter).

    Raises:
        ValueError: On an unknown selector, no answers, or a judge selector without a judge.
    """
    if selector not in SELECTORS:
        raise ValueError(f"unknown selector {selector!r} (valid: {', '.join(SELECTORS)})")
    if selector == "majority":
        return majority(answers, key, rng)
    if judge is None:
        raise ValueError(f"the {selector} selector needs a judge")
    if selector == "judge":
        return await judge_pick(judge, question, answers, rng, key)
    return await tournament(judge, question, answers, rng, key)


def _check_answers(answers: Sequence[str]) -> None:
    if not answers:
        raise ValueError("a selector needs at least one answer")
