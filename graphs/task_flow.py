"""Pipelined pool growth and adaptation: the scientist's calls kept in flight throughout.

Micro-batches leave the server idle while the slowest proposal of a batch finishes and
then while the batch goes through its gates. Here up to the scientist's concurrency of
proposals are in flight at all times; each goes through verification and the judge's
review as soon as it arrives, and the curator and the pool take the candidates one at
a time (``TaskPipeline.pipelined``), so admission stays one by one.

Resumable: every decided candidate is admitted to (or counted as refused by)
``pool.json`` at once, and the number of proposals made is kept in
``growth/<phase>-gen-NNN.json``; a killed phase resumes with the proposals it had not
made, each from a seed derived from its number. A progress line (proposals done and in
flight, admitted, refused by reason, tokens/s) is printed while the phase runs.
Human review of admitted tasks (``review_tasks``) keeps the micro-batch path.
"""

import json
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from acdc import atomic
from acdc.agents.task_pipeline import AdaptRequest, Candidate, pool_summary
from acdc.costs import is_budget_refusal
from acdc.graphs import task_phases
from acdc.graphs.phases import derived_seed
from acdc.graphs.resources import RunResources
from acdc.models import role_concurrency
from acdc.progress import duration
from acdc.types import ExpertId

PROGRESS_EVERY = 5.0
"""Seconds between progress lines (and at the end)."""


class Flow:
    """Live counts of a pipelined phase, and its progress line."""

    def __init__(self, label: str, count: int) -> None:
        self.label = label
        self.count = count
        self.started_at = time.monotonic()
        self._printed = 0.0
        self.started = 0
        self.done = 0
        self.unpaid = 0
        self.admitted: list[str] = []
        self.refused: Counter[str] = Counter()
        self.examples: dict[str, str] = {}
        self.tokens: Counter[str] = Counter()
        self.kinds: dict[str, Any] = {}
        self.replaced = 0
        """Parents retired because an admitted harder/easier variant replaced them."""

    def line(self) -> str:
        """``[gen 0 seed_tasks] proposals 12/80 done, 8 in flight; admitted 5; ...``."""
        elapsed = time.monotonic() - self.started_at
        rate = sum(self.tokens.values()) / elapsed if elapsed > 0 else 0.0
        refused = ", ".join(f"{k} {v}" for k, v in self.refused.most_common()) or "none"
        return (
            f"[{self.label}] proposals {self.done}/{self.count} done, "
            f"{self.started - self.done} in flight; admitted {len(self.admitted)}; "
            f"refused {sum(self.refused.values())} ({refused}); "
            f"{rate:.0f} tokens/s in and out; "
            f"{duration(elapsed)}"
        )

    def show(self, force: bool = False) -> None:
        """Print the progress line when due."""
        now = time.monotonic()
        if force or now - self._printed >= PROGRESS_EVERY:
            self._printed = now
            print(self.line(), file=sys.stderr, flush=True)

    def will_fill(self, active: int, target: int) -> bool:
        """Whether ``active`` plus the proposals in flight likely reach ``target``.

        In-flight proposals count at the admission rate seen so far (with one admitted
        of two as the prior, so the first proposals are not all waited for).
        """
        rate = (len(self.admitted) + 1) / (self.done + 2)
        return active + rate * (self.started - self.done) >= target

    def count_kind(self, kind: str, key: str, stage: str = "") -> None:
        """Proposed / admitted / refused-by-stage counts per adaptation kind."""
        entry = self.kinds.setdefault(kind, {"proposed": 0, "admitted": 0, "refused": {}})
        if stage:
            entry["refused"][stage] = entry["refused"].get(stage, 0) + 1
        else:
            entry[key] += 1


def _made_path(res: RunResources, phase: str, generation: int) -> Path:
    return res.run.growth_file(phase, generation)


def _made(res: RunResources, phase: str, generation: int) -> dict[str, Any]:
    """What this phase recorded before a kill: ``proposals`` made (and ``retired`` tasks)."""
    path = _made_path(res, phase, generation)
    if not path.is_file():
        return {"proposals": 0}
    return dict(json.loads(path.read_text()))


def _settler(
    res: RunResources,
    flow: Flow,
    phase: str,
    generation: int,
    offset: int,
    record: dict[str, Any] | None = None,
) -> Any:
    """The ``settle`` of one phase: admit or count each candidate as it is decided.

    ``record``: more to keep in the phase's growth file beside the proposals made.
    """

    def settle(candidate: Candidate) -> None:
        flow.done += 1
        flow.tokens.update(candidate.tokens)
        if is_budget_refusal(candidate.reason):
            flow.unpaid += 1  # never judged: the cost budget stopped it; a resume redoes it
            flow.show()
            return
        flow.count_kind(candidate.kind, "proposed")
        if candidate.accepted and candidate.task is not None:
            task = candidate.task
            if task_phases.admit_task(res, task):
                flow.replaced += 1
            flow.admitted.append(task.id)
            flow.count_kind(candidate.kind, "admitted")
        else:
            res.pool.reject(candidate.stage)
            flow.refused[candidate.stage] += 1
            flow.examples[candidate.stage] = candidate.reason[:300]
            flow.count_kind(candidate.kind, "", candidate.stage)
            if candidate.task is not None:
                task_phases.keep_rejected(
                    res, candidate.task, candidate.stage, candidate.reason, generation
                )
        made = offset + flow.done - flow.unpaid
        atomic.write_json(_made_path(res, phase, generation), {**(record or {}), "proposals": made})
        flow.show()

    return settle


def grow_pool(res: RunResources, generation: int) -> int:
    """Grow the pool to its target with proposals kept in flight; returns tokens."""
    ctx = res.ctx
    started = time.perf_counter()
    made = int(_made(res, "seed_tasks", generation)["proposals"])
    budget = max(0, ctx.task_rounds * ctx.task_batch - made)
    flow = Flow(f"gen {generation} seed_tasks", budget)

    def enough() -> bool:
        return flow.will_fill(len(res.pool.active), ctx.pool_target) or res.ledger.exhausted

    if (
        len(res.pool.active) >= ctx.pool_target or budget == 0
    ):  # nothing to propose; the seeds alone may exceed the cap
        return _finish(res, flow, "seed_tasks", generation, started, Counter())
    pipeline = res.pipeline()

    async def propose(k: int) -> tuple[Any, AdaptRequest | None]:
        flow.started += 1
        rng = random.Random(derived_seed(ctx.random_seed, "grow", generation, made + k))
        active = res.pool.active_tasks()
        examples = rng.sample(active, min(2, len(active)))
        proposal = await pipeline.scientist.create(
            pool_summary=pool_summary(active), examples=examples, generation=generation
        )
        return proposal, None

    settle = _settler(res, flow, "seed_tasks", generation, made)
    concurrency = role_concurrency(ctx, "scientist")
    res.run_async(
        pipeline.pipelined(
            propose,
            count=budget,
            concurrency=concurrency,
            settle=settle,
            stop=enough,
        )
    )
    return _finish(res, flow, "seed_tasks", generation, started, Counter())


def adapt_pool(res: RunResources, archive: list[ExpertId], generation: int) -> int:
    """Retire impossible tasks, adapt the drawn parents, refill, trim; returns tokens.

    The ``adapt_parents`` drawn requests (the reference's rule) are made first; then,
    while the active pool is short of ``pool_target`` (counting what is in flight at
    the admission rate so far), refill requests (``task_phases.refill_request``), all
    within ``adapt_budget`` proposals and with ``scientist_concurrency`` in flight.
    """
    ctx = res.ctx
    started = time.perf_counter()
    record = _made(res, "adapt_tasks", generation)
    made = int(record["proposals"])
    rates = task_phases.archive_pass_rates(res, archive)
    if made == 0 and "retired" not in record:
        record["retired"] = task_phases.retire_impossible(res, rates)
        atomic.write_json(_made_path(res, "adapt_tasks", generation), record)
    impossible: list[str] = list(record.get("retired") or [])
    retired = Counter({"impossible": len(impossible)} if impossible else {})
    rng = random.Random(derived_seed(ctx.random_seed, "adapt", generation))
    drawn = task_phases.draw_requests(res, rates, rng)
    parents = task_phases.refill_parents(res, rates, impossible)
    budget = max(0, ctx.adapt_budget - made)
    flow = Flow(f"gen {generation} adapt_tasks", budget)
    pipeline = res.pipeline()
    summary = pool_summary(res.pool.active_tasks())

    def request(k: int) -> AdaptRequest:
        """Proposal ``k`` of the phase: a drawn parent's, then a refill's."""
        if k < len(drawn):
            return drawn[k]
        seed = derived_seed(ctx.random_seed, "refill", generation, k)
        return task_phases.refill_request(res, parents, rates, random.Random(seed))

    def stop() -> bool:
        """Budget spent, or every drawn request made and the pool (likely) refilled."""
        if res.ledger.exhausted:
            return True
        if made + flow.started < len(drawn):
            return False
        return not parents or flow.will_fill(len(res.pool.active), ctx.pool_target)

    async def propose(k: int) -> tuple[Any, AdaptRequest | None]:
        flow.started += 1
        adapt = request(made + k)
        proposal = await pipeline.scientist.adapt(
            adapt.task,
            kind=adapt.kind,
            pass_rate=adapt.pass_rate,
            generation=generation,
            pool_summary=summary,
        )
        return proposal, adapt

    settle = _settler(res, flow, "adapt_tasks", generation, made, {"retired": impossible})
    res.run_async(
        pipeline.pipelined(
            propose,
            count=budget,
            concurrency=role_concurrency(ctx, "scientist"),
            settle=settle,
            stop=stop,
        )
    )
    return _finish(res, flow, "adapt_tasks", generation, started, retired)


def _finish(
    res: RunResources,
    flow: Flow,
    phase: str,
    generation: int,
    started: float,
    retired: Counter[str],
) -> int:
    """Trim to the cap, log the phase record, print the last progress and summary lines."""
    if flow.replaced:
        retired["replaced"] += flow.replaced
    retired.update(task_phases.trim_pool(res))
    res.tokens.update(flow.tokens)
    flow.show(force=True)
    res.run.log(
        "phase",
        phase=phase,
        generation=generation,
        seconds=round(time.perf_counter() - started, 2),
        accepted=flow.admitted,
        rejected=dict(flow.refused),
        rejection_examples=flow.examples,
        by_kind=flow.kinds,
        retired=dict(retired),
        tokens=dict(flow.tokens),
        pool_size=len(res.pool.active),
        proposals=flow.done - flow.unpaid,
        pipelined=True,
    )
    print(
        f"[gen {generation} {phase}] accepted {len(flow.admitted)}, rejected "
        f"{sum(flow.refused.values())} {dict(flow.refused) or ''}; retired "
        f"{dict(retired) or 0}; pool {len(res.pool.active)}",
        flush=True,
    )
    return sum(flow.tokens.values())
