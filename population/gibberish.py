"""Reject freshly bred children that produce gibberish, before they cost evaluations.

A child answers a few fixed prompts (``prompts/sanity_check.txt``, one per line) at
temperature 0; its answers are rejected when empty, dominated by repetition, or not
mostly words. Prose without common words is word salad; a list is not prose, so only
lines of eight words or more count for that test (the seed's own numbered list of
farm animals failed it when the whole answer counted).
"""

import asyncio
import itertools
import re
from collections import Counter
from dataclasses import dataclass

from acdc.population.client import PopulationClient
from acdc.progress import Progress
from acdc.prompts.loader import prompt_path
from acdc.types import ExpertId

_WORD = re.compile(r"[^\W\d_]+")
_MASHED = re.compile(r"[a-z][A-Z]|^.{19,}$")
FUNCTION_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "from",
        "with",
        "and",
        "or",
        "but",
        "not",
        "no",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "as",
        "if",
        "so",
        "than",
        "then",
        "there",
        "their",
        "they",
        "he",
        "she",
        "we",
        "you",
        "i",
        "my",
        "your",
        "our",
        "his",
        "her",
        "has",
        "have",
        "had",
        "do",
        "does",
        "did",
        "can",
        "will",
        "would",
        "should",
        "could",
        "may",
        "about",
        "into",
        "which",
        "who",
        "what",
        "when",
        "where",
        "why",
        "how",
        "all",
        "some",
        "many",
        "most",
        "more",
        "very",
        "also",
        "only",
    ]
)
"""Frequent English words: real sentences use them, word salad rarely does. The sanity
prompts are English; change this set too if you translate them."""


@dataclass(frozen=True)
class SanityVerdict:
    """Outcome of the gibberish check for one expert."""

    expert_id: ExpertId
    ok: bool
    reason: str
    answers: list[str]


def gibberish_reason(text: str) -> str | None:
    """Why ``text`` looks like gibberish, or None if it reads like text."""
    stripped = text.strip()
    if len(stripped) < 2:
        return "empty answer"
    printable = sum(ch.isprintable() or ch.isspace() for ch in stripped)
    if printable / len(stripped) < 0.95:
        return "non-printable characters"
    letters = sum(ch.isalpha() for ch in stripped)
    if letters / len(stripped) < 0.4:
        return "too few letters"
    raw_words = _WORD.findall(stripped)
    words = [w.lower() for w in raw_words]
    if not words:
        return "no words"
    if len(words) >= 8:
        if Counter(words).most_common(1)[0][1] / len(words) > 0.4:
            return "one word repeated"
        trigrams = list(zip(words, words[1:], words[2:], strict=False))
        if len(set(trigrams)) / len(trigrams) < 0.5:
            return "repetitive phrases"
        if sum(a == b for a, b in itertools.pairwise(words)) / len(words) > 0.15:
            return "stuttering (a word repeated back to back)"
        if sum(bool(_MASHED.search(w)) for w in raw_words) / len(words) > 0.15:
            return "mashed-together words"
        prose = [w for line in stripped.splitlines() for w in _prose_words(line)]
        if prose and sum(w in FUNCTION_WORDS for w in prose) / len(prose) < 0.08:
            return "word salad (almost no common words)"
    return None


def _prose_words(line: str) -> list[str]:
    """The lowercased words of ``line`` if it is long enough to be a sentence, else none."""
    words = [w.lower() for w in _WORD.findall(line)]
    return words if len(words) >= 8 else []


def sanity_prompts() -> list[str]:
    """The fixed prompts of the check, one per non-empty line of the prompt file."""
    lines = prompt_path("sanity_check").read_text().splitlines()
    return [line.strip() for line in lines if line.strip()]


async def check_expert(
    client: PopulationClient, expert_id: ExpertId, max_tokens: int = 48
) -> SanityVerdict:
    """Ask the fixed prompts; the expert passes when every answer reads like text."""
    prompts = sanity_prompts()
    results = await asyncio.gather(
        *(
            client.chat(expert_id, [{"role": "user", "content": p}], max_tokens=max_tokens)
            for p in prompts
        )
    )
    answers = [r.text for r in results]
    for prompt, answer in zip(prompts, answers, strict=True):
        reason = gibberish_reason(answer)
        if reason is not None:
            return SanityVerdict(expert_id, False, f"{reason} for {prompt!r}", answers)
    return SanityVerdict(expert_id, True, "", answers)


async def check_experts(
    client: PopulationClient, expert_ids: list[ExpertId], label: str = "sanity check"
) -> list[SanityVerdict]:
    """Check ``expert_ids`` one after another, unloading each from the server after its check.

    One at a time keeps at most one fresh adapter loaded for the check (children wait
    for evaluation on disk, not on the server). A progress line shows children checked
    of all and the time per child: on a busy CPU a check takes tens of seconds, and a
    phase of several children must not look hung.
    """
    progress = Progress(label, len(expert_ids), unit="child")
    progress.update(0)
    verdicts = []
    for done, expert_id in enumerate(expert_ids, start=1):
        verdicts.append(await check_expert(client, expert_id))
        await client.unload(expert_id)
        progress.update(done)
    progress.finish()
    return verdicts
