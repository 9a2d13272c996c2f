"""From proposal to admission: scientist drafts, verification, judge review, curator's gates.

Proposals, verification (the task's grader run on its references and wrong answers)
and reviews run concurrently; the curator admits one candidate at a time so two
near-duplicates of one micro-batch cannot both pass the novelty gate. Every candidate
comes back as a ``Candidate`` with the stage it reached and why, so the run can report
rejections by reason and by adaptation kind.

``pipelined`` keeps the server busy instead of waiting on micro-batches: up to
``concurrency`` proposals are in flight at all times, each goes through its checks the
moment it arrives while new proposals start, and each reaches the caller's ``settle``
(admission into the pool) one at a time, in the order the curator decided them.
"""

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from acdc.agents.curator import Curator
from acdc.agents.judge import Judge
from acdc.agents.scientist import AdaptKind, Proposal, Scientist
from acdc.agents.verify import verify_task
from acdc.tasks import Task

Stage = str
"""scientist, verify, review, contamination, duplicate, interestingly_new or accepted."""
Kind = str
"""create (pool growth), harder, easier, novel_related or novel_unrelated."""


@dataclass(frozen=True)
class Candidate:
    """One proposed task and how far it got."""

    task: Task | None
    stage: Stage
    reason: str
    tokens: dict[str, int]
    """Tokens spent on it by role (scientist, judge, curator)."""
    kind: Kind = "create"
    parent: Task | None = None
    """The task it varies (harder/easier/novel), None for a brand-new task."""

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
    ancestors: tuple[Task, ...] = ()
    """``task``'s own parent and its ancestors, left out of a variant's novelty gates."""


Propose = Callable[[int], Awaitable[tuple[Proposal, "AdaptRequest | None"]]]
"""Makes proposal number k (with the adaptation request it answers, if any)."""
Settle = Callable[[Candidate], None]
"""Takes one decided candidate: admit it to the pool or count its refusal."""


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
    rubric: bool = True
    """Whether rubric tasks may be admitted (False while the judge is not calibrated)."""

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
        return await self._gate([(p, None) for p in proposals])

    async def adapt(
        self,
        requests: Sequence[AdaptRequest],
        pool: Sequence[Task],
        *,
        generation: int,
    ) -> list[Candidate]:
        """Adapt each requested task (harder, easier or novel)."""
        summary = pool_summary(pool)
        proposals = await asyncio.gather(
            *(
                self.scientist.adapt(
                    r.task,
                    kind=r.kind,
                    pass_rate=r.pass_rate,
                    generation=generation,
                    pool_summary=summary,
                )
                for r in requests
            )
        )
        return await self._gate(list(zip(proposals, requests, strict=True)))

    async def pipelined(
        self,
        propose: Propose,
        *,
        count: int,
        concurrency: int,
        settle: Settle,
        stop: Callable[[], bool] = lambda: False,
    ) -> int:
        """Make up to ``count`` proposals, ``concurrency`` in flight; returns how many.

        Each proposal is checked as soon as it arrives; candidates that pass reach the
        curator one at a time, and every candidate reaches ``settle`` inside that same
        turn, so the next admission sees the pool and index as this one left them. No
        new proposal starts once ``stop()`` is true; those in flight finish.
        """
        started = 0
        turn = asyncio.Lock()

        async def worker() -> None:
            nonlocal started
            while started < count and not stop():
                k = started
                started += 1
                proposal, request = await propose(k)
                candidate = await self._check(proposal, request)
                async with turn:
                    if candidate.stage == "checked" and candidate.task is not None:
                        candidate = await self._admit(candidate, request)
                    settle(candidate)

        await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, count)))))
        return started

    async def _admit(self, candidate: Candidate, request: AdaptRequest | None) -> Candidate:
        """The curator's gates for a checked candidate."""
        assert candidate.task is not None
        # Only a harder/easier variant is spared comparison with its own lineage; a
        # novel task must be new next to its parent too.
        variant = request is not None and request.kind in ("harder", "easier")
        lineage = (request.task, *request.ancestors) if request and variant else ()
        admission = await self.curator.admit(candidate.task, lineage=lineage, variant=variant)
        tokens = {**candidate.tokens, "curator": admission.tokens}
        return Candidate(
            candidate.task,
            admission.gate,
            admission.reason,
            tokens,
            candidate.kind,
            candidate.parent,
        )

    async def _gate(
        self, proposals: Sequence[tuple[Proposal, AdaptRequest | None]]
    ) -> list[Candidate]:
        checked = await asyncio.gather(*(self._check(p, r) for p, r in proposals))
        out: list[Candidate] = []
        for candidate, (_, request) in zip(checked, proposals, strict=True):
            if candidate.stage != "checked" or candidate.task is None:
                out.append(candidate)
                continue
            out.append(await self._admit(candidate, request))
        return out

    async def _check(self, proposal: Proposal, request: AdaptRequest | None) -> Candidate:
        """Verification by execution, then the judge's review."""
        kind, parent = (request.kind, request.task) if request else ("create", None)
        tokens = {"scientist": proposal.tokens}
        if proposal.task is None:
            return Candidate(None, "scientist", proposal.reason, tokens, kind, parent)
        if proposal.task.grading == "rubric" and not self.rubric:
            why = "rubric grading needs a calibrated judge (judge_calibration.json; trust_judge)"
            return Candidate(proposal.task, "judge_uncalibrated", why, tokens, kind, parent)
        verification = await asyncio.to_thread(verify_task, proposal.task)
        if not verification.ok:
            return Candidate(proposal.task, "verify", verification.reason, tokens, kind, parent)
        if not self.validate:
            return Candidate(proposal.task, "checked", "", tokens, kind, parent)
        review = await self.judge.validate(proposal.task)
        tokens["judge"] = review.tokens
        stage = "checked" if review.ok else "review"
        return Candidate(proposal.task, stage, review.reason, tokens, kind, parent)


def adaptation_kind(
    pass_rate: float, harder_above: float, related_share: float, rng: random.Random
) -> AdaptKind:
    """The reference's rule for a drawn parent with pass rate over the archive.

    Passed by more than ``harder_above`` -> harder; passed by some -> novel (related to
    the parent with probability ``related_share``, :func:`novel_kind`); passed by none
    (drawn only when no task is passed at all) -> easier.
    """
    if pass_rate > harder_above:
        return "harder"
    if pass_rate > 0.0:
        return novel_kind(related_share, rng)
    return "easier"


def novel_kind(related_share: float, rng: random.Random) -> AdaptKind:
    """A novel request: related to its parent with probability ``related_share``.

    The reference sends 80 % of its novel requests to the related prompt; an unrelated
    one asks for a new task and shows the parent only as something to differ from.
    """
    return "novel_related" if rng.random() < related_share else "novel_unrelated"
