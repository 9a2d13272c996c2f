"""From proposal to admission: scientist drafts, judge review, then the curator's gates.

Proposals and reviews run concurrently; the curator admits one candidate at a time so
two near-duplicates of one micro-batch cannot both pass the novelty gate. Every
candidate comes back as a ``Candidate`` with the stage it reached and why, so the run
can report rejections by reason.
"""

import asyncio
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from acdc.agents.curator import Curator
from acdc.agents.judge import Judge
from acdc.agents.scientist import AdaptKind, Proposal, Scientist
from acdc.tasks import Task

Stage = str
"""scientist, review, contamination, duplicate, interestingly_new or accepted."""


@dataclass(frozen=True)
class Candidate:
    """One proposed task and how far it got."""

    task: Task | None
    stage: Stage
    reason: str
    tokens: dict[str, int]
    """Tokens spent on it by role (scientist, judge, curator)."""

    @property
    def accepted(self) -> bool:
        """Whether the curator admitted it."""
        return self.stage == "accepted"


@dataclass(frozen=True)
class AdaptRequest:
    """Adapt ``task`` in direction ``kind`` given its pass rate over the archive."""

    task: Task
    kind: AdaptKind
    pass_rate: float


def pool_summary(tasks: Sequence[Task]) -> str:
    """Capabilities in the pool with counts, for the scientist to aim elsewhere."""
    counts = Counter(t.capability for t in tasks)
    return "\n".join(f"- {cap} ({n} tasks)" for cap, n in counts.most_common(40))


@dataclass
class TaskPipeline:
    """The three roles wired for one micro-batch of candidates."""

    scientist: Scientist
    judge: Judge
    curator: Curator
    validate: bool = True

    async def create(
        self, n: int, pool: Sequence[Task], *, generation: int, rng: random.Random
    ) -> list[Candidate]:
        """Propose ``n`` new tasks, each shown two random pool tasks as examples."""
        summary = pool_summary(pool)
        examples = [rng.sample(list(pool), min(2, len(pool))) for _ in range(n)]
        proposals = await asyncio.gather(
            *(
                self.scientist.create(pool_summary=summary, examples=ex, generation=generation)
                for ex in examples
            )
        )
        return await self._gate(proposals)

    async def adapt(
        self,
        requests: Sequence[AdaptRequest],
        pool: Sequence[Task],
        *,
        generation: int,
        rng: random.Random,
    ) -> list[Candidate]:
        """Adapt each requested task (harder, easier or novel)."""
        summary = pool_summary(pool)
        seeds = [rng.random() for _ in requests]
        proposals = await asyncio.gather(
            *(
                self.scientist.adapt(
                    r.task,
                    kind=r.kind,
                    pass_rate=r.pass_rate,
                    generation=generation,
                    rng=random.Random(seed),
                    pool_summary=summary,
                )
                for r, seed in zip(requests, seeds, strict=True)
            )
        )
        return await self._gate(proposals)

    async def _gate(self, proposals: Sequence[Proposal]) -> list[Candidate]:
        reviewed = await asyncio.gather(*(self._review(p) for p in proposals))
        out: list[Candidate] = []
        for candidate in reviewed:
            if candidate.stage != "review-passed" or candidate.task is None:
                out.append(candidate)
                continue
            admission = await self.curator.admit(candidate.task)
            tokens = {**candidate.tokens, "curator": admission.tokens}
            out.append(Candidate(candidate.task, admission.gate, admission.reason, tokens))
        return out

    async def _review(self, proposal: Proposal) -> Candidate:
        tokens = {"scientist": proposal.tokens}
        if proposal.task is None:
            return Candidate(None, "scientist", proposal.reason, tokens)
        if not self.validate:
            return Candidate(proposal.task, "review-passed", "", tokens)
        review = await self.judge.validate(proposal.task)
        tokens["judge"] = review.tokens
        if not review.ok:
            return Candidate(proposal.task, "review", review.reason, tokens)
        return Candidate(proposal.task, "review-passed", review.reason, tokens)


def adaptation_kind(pass_rate: float, harder_above: float) -> AdaptKind | None:
    """The paper's rule: mostly passed -> harder, sometimes passed -> novel, never -> drop."""
    if pass_rate > harder_above:
        return "harder"
    if pass_rate > 0.0:
        return "novel"
    return None
