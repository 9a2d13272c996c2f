"""The task phases: seed tasks, growing the pool, adapting it to the archive.

One call handles one micro-batch: proposals from the scientist, the judge's review, the
curator's gates, then (optionally) a person's review, then admission to ``pool.json``.
Rejections are counted by the stage that refused them and logged with examples.
"""

import random
import time
from collections import Counter
from collections.abc import Sequence

from acdc import atomic
from acdc.agents.curator import plan_retirements
from acdc.agents.task_pipeline import AdaptRequest, Candidate, adaptation_kind
from acdc.graphs.phases import derived_seed, scored_instances, skills
from acdc.graphs.resources import RunResources
from acdc.graphs.review import load_pending, review
from acdc.tasks import Task, load_tasks, seed_tasks_dir
from acdc.types import ExpertId


def load_seed_tasks(res: RunResources) -> None:
    """Admit the hand-written seed tasks once (idempotent)."""
    for task in load_tasks(seed_tasks_dir()):
        if task.id not in res.pool.active and task.id not in res.pool.retired:
            res.index.upsert(task, status="active")
            res.pool.admit(task)


def grow_pool(res: RunResources, generation: int, batch_round: int) -> int:
    """One micro-batch of new tasks towards ``initial_pool``; returns tokens spent."""
    need = res.ctx.initial_pool - len(res.pool.active)
    pending = load_pending(res.run.root)
    if need <= 0 and pending is None:
        return 0
    started = time.perf_counter()
    candidates: list[Candidate] = []
    if pending is None:
        rng = random.Random(derived_seed(res.ctx.random_seed, "grow", generation, batch_round))
        coro = res.pipeline().create(
            min(res.ctx.task_batch, need), res.pool.active_tasks(), generation=generation, rng=rng
        )
        candidates = res.run_async(coro)
    return _admit(res, candidates, pending, "seed_tasks", generation, started)


def adapt_pool(res: RunResources, archive: list[ExpertId], generation: int) -> int:
    """Adapt tasks drawn by pass rate, drop impossible ones, trim the pool; returns tokens."""
    started = time.perf_counter()
    pending = load_pending(res.run.root)
    candidates: list[Candidate] = []
    if pending is None:
        rates = pass_rates(res, archive)
        rng = random.Random(derived_seed(res.ctx.random_seed, "adapt", generation))
        active = res.pool.active_tasks()
        requests: list[AdaptRequest] = []
        for task in (rng.choice(active) for _ in range(res.ctx.adapt_parents)):
            kind = adaptation_kind(rates.get(task.id, 0.0), res.ctx.harder_pass_rate)
            if kind is None:
                res.pool.retire(task.id, "solved by no expert of the archive")
                res.index.set_status(task.id, "retired")
            else:
                requests.append(AdaptRequest(task, kind, rates.get(task.id, 0.0)))
        coro = res.pipeline().adapt(
            requests, res.pool.active_tasks(), generation=generation, rng=rng
        )
        candidates = res.run_async(coro)
    tokens = _admit(res, candidates, pending, "adapt_tasks", generation, started)
    # Only the cap trims here (oldest first); tasks leave for their pass rate only when
    # drawn as parents above, as in the paper, so the pool cannot collapse at once.
    for retirement in plan_retirements(res.pool.active_tasks(), {}, res.ctx.pool_max):
        res.pool.retire(retirement.task_id, retirement.reason)
        res.index.set_status(retirement.task_id, "retired")
    return tokens


def pass_rates(res: RunResources, archive: Sequence[ExpertId]) -> dict[str, float]:
    """Share of the archive passing each fully evaluated active task."""
    task_ids, matrix = skills(res, archive)
    tasks = {t.id: [i.id for i in scored_instances(res, t)] for t in res.pool.active_tasks()}
    evaluated = res.run.evaluations().mean_scores(archive, tasks)
    rates: dict[str, float] = {}
    for column, task_id in enumerate(task_ids):
        if archive and all((e, task_id) in evaluated for e in archive):
            rates[task_id] = float(matrix[:, column].mean())
    return rates


def _admit(
    res: RunResources,
    candidates: list[Candidate],
    pending: list[Task] | None,
    phase: str,
    generation: int,
    started: float,
) -> int:
    """Count rejections, let a person review if asked, admit the rest to the pool."""
    stages = Counter(c.stage for c in candidates if not c.accepted)
    examples = {c.stage: c.reason[:300] for c in candidates if not c.accepted}
    tokens: Counter[str] = Counter()
    for candidate in candidates:
        tokens.update(candidate.tokens)
    for candidate in candidates:
        if not candidate.accepted:
            res.pool.reject(candidate.stage)
            if candidate.task is not None:
                _keep_rejected(res, candidate.task, candidate.stage, candidate.reason, generation)
    accepted = (
        pending if pending is not None else [c.task for c in candidates if c.accepted and c.task]
    )
    if res.ctx.review_tasks:
        shown = {t.id: t for t in accepted}
        accepted, refused = review(res.run.root, accepted)
        for task_id, reason in refused.items():
            res.index.set_status(task_id, "rejected")
            res.pool.reject("reviewer")
            _keep_rejected(res, shown[task_id], "reviewer", reason, generation)
            stages["reviewer"] += 1
            examples["reviewer"] = reason
    for task in accepted:
        res.index.upsert(task, status="active")
        res.pool.admit(task)
    res.tokens.update(tokens)
    res.run.log(
        "phase",
        phase=phase,
        generation=generation,
        seconds=round(time.perf_counter() - started, 2),
        accepted=[t.id for t in accepted],
        rejected=dict(stages),
        rejection_examples=examples,
        tokens=dict(tokens),
        pool_size=len(res.pool.active),
    )
    print(
        f"[gen {generation} {phase}] accepted {len(accepted)}, rejected {sum(stages.values())} "
        f"{dict(stages) or ''}; pool {len(res.pool.active)}",
        flush=True,
    )
    return sum(tokens.values())


def _keep_rejected(res: RunResources, task: Task, stage: str, reason: str, generation: int) -> None:
    """Keep a refused candidate in ``rejected/`` (the report maps accepted vs rejected)."""
    record = {
        "task": task.model_dump(mode="json"),
        "stage": stage,
        "reason": reason[:500],
        "generation": generation,
    }
    atomic.write_json(res.run.root / "rejected" / f"{task.id}.json", record)
