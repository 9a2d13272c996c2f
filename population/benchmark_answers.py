"""Task-force members' answers to a benchmark: generated once on the population server, cached.

``acdc eval coverage`` (``graphs/coverage_eval.py``) has every member of a task force and
of its baselines answer every question. A *slot* is one answer source: an expert at a
temperature, with a sample number telling the seed's repeated samples apart. Every
answer is cached in ``<run>/eval/answers.jsonl`` (append-only), keyed by expert, exact
prompt, temperature, sample and token limit. A rerun or a smaller N generates nothing
(greedy, top-N and random members of a smaller N are prefixes, and so are the seed's
samples 0..N-1); a larger N generates only the new members' answers. Sampled answers
(temperature > 0) carry a per-request seed, so they are reproducible.
"""

import asyncio
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acdc.context import Context
from acdc.models import subject_concurrency
from acdc.population.client import PopulationClient
from acdc.population.taskforce import TaskForce
from acdc.progress import Progress
from acdc.runstore import JsonlLog
from acdc.types import ExpertId


@dataclass(frozen=True)
class Slot:
    """One answer source: an expert at a temperature, ``sample`` telling repeats apart."""

    expert_id: ExpertId
    temperature: float
    sample: int


def slots_of(force: TaskForce) -> list[Slot]:
    """One slot per member; a repeated member (the seed's samples) gets samples 0, 1, ..."""
    seen: Counter[ExpertId] = Counter()
    slots = []
    for expert_id in force.members:
        slots.append(Slot(expert_id, force.temperature, seen[expert_id]))
        seen[expert_id] += 1
    return slots


class AnswerCache:
    """``answers.jsonl``: every generated answer, keyed; each key is written once.

    Each record keeps the server's ``finish_reason``, so an answer cut at the token
    limit is known as such (older records without it: cut when it used every token).
    """

    def __init__(self, path: Path, max_tokens: int) -> None:
        self.max_tokens = max_tokens
        self._log = JsonlLog(path)
        self._texts: dict[tuple[Any, ...], str] = {}
        self._cut: set[tuple[Any, ...]] = set()
        for record in self._log.records():
            key = (
                record["expert_id"],
                record["prompt_sha256"],
                record["temperature"],
                record["sample"],
                record["max_tokens"],
            )
            if key in self._texts:
                continue
            self._texts[key] = record["text"]
            reason = record.get("finish_reason")
            used_all = int(record.get("completion_tokens", 0)) >= int(record["max_tokens"])
            if reason == "length" or (reason is None and used_all):
                self._cut.add(key)

    def _key(self, slot: Slot, prompt: str) -> tuple[Any, ...]:
        digest = hashlib.sha256(prompt.encode()).hexdigest()
        return (slot.expert_id, digest, slot.temperature, slot.sample, self.max_tokens)

    def get(self, slot: Slot, prompt: str) -> str | None:
        """The cached answer of ``slot`` to ``prompt``, or None."""
        return self._texts.get(self._key(slot, prompt))

    def truncated(self, slot: Slot, prompt: str) -> bool:
        """Whether the cached answer was cut at the token limit."""
        return self._key(slot, prompt) in self._cut

    def add(
        self, slot: Slot, prompt: str, text: str, tokens: int, finish_reason: str = "stop"
    ) -> None:
        """Store one answer (a second one for the same key is ignored)."""
        key = self._key(slot, prompt)
        if key in self._texts:
            return
        expert_id, digest, temperature, sample, max_tokens = key
        self._log.append(
            {
                "expert_id": expert_id,
                "prompt_sha256": digest,
                "temperature": temperature,
                "sample": sample,
                "max_tokens": max_tokens,
                "text": text,
                "completion_tokens": tokens,
                "finish_reason": finish_reason,
            }
        )
        self._texts[key] = text
        if finish_reason == "length":
            self._cut.add(key)


async def generate(
    client: PopulationClient,
    cache: AnswerCache,
    prompts: Sequence[str],
    slots: Sequence[Slot],
    ctx: Context,
) -> int:
    """Answer every prompt with every slot not cached yet; returns how many were generated.

    A failed request raises after the client's retries; answers finished before stay
    cached, so running the evaluation again resumes.
    """
    todo = [(s, p) for s in dict.fromkeys(slots) for p in prompts if cache.get(s, p) is None]
    progress = Progress("eval answers", len(todo))
    limit = asyncio.Semaphore(subject_concurrency(ctx))
    done, tokens = 0, 0

    async def one(slot: Slot, prompt: str) -> None:
        nonlocal done, tokens
        extra: dict[str, Any] = {}
        if slot.temperature > 0:  # reproducible samples: vLLM honours a per-request seed
            digest = hashlib.sha256(f"{ctx.random_seed}|{slot}|{prompt}".encode()).hexdigest()
            extra["seed"] = int(digest[:8], 16)
        async with limit:
            result = await client.chat(
                slot.expert_id,
                [{"role": "user", "content": prompt}],
                max_tokens=cache.max_tokens,
                temperature=slot.temperature,
                **extra,
            )
        cache.add(slot, prompt, result.text, result.completion_tokens, result.finish_reason)
        done, tokens = done + 1, tokens + result.completion_tokens
        progress.update(done, tokens=tokens)

    await asyncio.gather(*(one(slot, prompt) for slot, prompt in todo))
    if todo:
        progress.finish()
    return len(todo)
