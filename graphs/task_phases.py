"""The task phases in micro-batches, and the pool edits both task paths share.

``grow_pool_batch`` and ``adapt_pool_batch`` handle one micro-batch per call: proposals
from the scientist, verification, the judge's review, the curator's gates, then
(optionally) a person's review, then admission to ``pool.json`` and the pool cap. The
run takes this path when a person reviews admitted tasks; otherwise ``task_flow.py``
keeps proposals in flight, with the same edits of the pool from here (seed tasks,
retiring, drawing parents, refills, admission, the cap). Rejections are counted by the
stage that refused them and by adaptation kind, retirements by cause, and logged with
examples.
"""

import random
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acdc import atomic
from acdc.agents.curator import draw_parents, impossible_tasks, over_cap
from acdc.agents.task_pipeline import AdaptRequest, Candidate, adaptation_kind, novel_kind
from acdc.graphs.phases import derived_seed
from acdc.graphs.resources import RunResources
from acdc.graphs.review import load_pending, review
from acdc.graphs.skill_matrix import skills
from acdc.tasks import Task, load_tasks, seed_tasks_dir
from acdc.types import ExpertId, TaskId


def load_seed_tasks(res: RunResources) -> None:
    """Admit the hand-written seed tasks once (idempotent)."""
    folder = Path(res.ctx.seed_tasks_dir) if res.ctx.seed_tasks_dir else seed_tasks_dir()
    for task in load_tasks(folder):
        if task.id not in res.pool.active and task.id not in res.pool.retired:
            res.index.upsert(task, status="active")
            res.pool.admit(task)


def grow_pool_batch(res: RunResources, generation: int, batch_round: int) -> int:
    """One micro-batch of new tasks towards the pool target; returns tokens spent."""
    need = res.ctx.pool_target - len(res.pool.active)
    pending = load_pending(res.run.root)
    if need <= 0 and pending is None:
        return _admit(res, [], None, "seed_tasks", generation, time.perf_counter())
    started = time.perf_counter()
    candidates: list[Candidate] = []
    if pending is None:
        rng = random.Random(derived_seed(res.ctx.random_seed, "grow", generation, batch_round))
        coro = res.pipeline().create(
            min(res.ctx.task_batch, need), res.pool.active_tasks(), generation=generation, rng=rng
        )
        candidates = res.run_async(coro)
    return _admit(res, candidates, pending, "seed_tasks", generation, started)


def adapt_pool_batch(res: RunResources, archive: list[ExpertId], generation: int) -> int:
    """Retire impossible tasks, adapt parents drawn by pass rate, refill, trim; returns tokens.

    The reference's semantics (DESIGN.md section 4): every task no archive member passes
    leaves first (unless all would), so the pool cannot fill with dead tasks; parents
    are then drawn, with replacement, among tasks some member passes. A harder or
    easier variant replaces its parent; a novel task joins beside it. Then refill
    requests (:func:`refill_request`) for the places the pool lacks, within
    ``adapt_budget``. This is the micro-batch path of a person's review; without one,
    ``task_flow.adapt_pool`` keeps the proposals in flight instead.
    """
    started = time.perf_counter()
    pending = load_pending(res.run.root)
    candidates: list[Candidate] = []
    retired: Counter[str] = Counter()
    if pending is None:
        rates = archive_pass_rates(res, archive)
        impossible = retire_impossible(res, rates)
        retired["impossible"] = len(impossible)
        rng = random.Random(derived_seed(res.ctx.random_seed, "adapt", generation))
        requests = draw_requests(res, rates, rng)
        parents = refill_parents(res, rates, impossible)
        need = res.ctx.pool_target - len(res.pool.active)
        room = res.ctx.adapt_budget - len(requests)
        for k in range(min(max(0, need), room) if parents else 0):
            seed = derived_seed(res.ctx.random_seed, "refill", generation, k)
            requests.append(refill_request(res, parents, rates, random.Random(seed)))
        coro = res.pipeline().adapt(requests, res.pool.active_tasks(), generation=generation)
        candidates = res.run_async(coro)
    return _admit(res, candidates, pending, "adapt_tasks", generation, started, +retired)


def retire_impossible(res: RunResources, rates: dict[str, float]) -> list[TaskId]:
    """Retire every task no archive member passes (a variant gives its parent back).

    Returns the retired tasks: the refill asks for easier variants of them.
    """
    retired = impossible_tasks(res.pool.active_tasks(), rates)
    for task_id in retired:
        restored = res.pool.retire_impossible(
            task_id, "impossible: solved by no expert of the archive"
        )
        res.index.set_status(task_id, "retired")
        if restored is not None:
            res.index.set_status(restored, "active")
    return retired


def draw_requests(
    res: RunResources, rates: dict[str, float], rng: random.Random
) -> list[AdaptRequest]:
    """An adaptation request for each of ``adapt_parents`` parents (``draw_parents``)."""
    requests: list[AdaptRequest] = []
    for task in draw_parents(res.pool.active_tasks(), rates, res.ctx.adapt_parents, rng):
        rate = rates[task.id]
        kind = adaptation_kind(rate, res.ctx.harder_pass_rate, res.ctx.novel_related_share, rng)
        requests.append(AdaptRequest(task, kind, rate, tuple(res.pool.lineage(task))))
    return requests


def refill_parents(
    res: RunResources, rates: dict[str, float], impossible: Sequence[TaskId]
) -> list[Task]:
    """The tasks a refill draws from: those some member passes, and those just retired.

    A passed task parents a novel task (it grows the pool beside its parent); a task
    just retired as impossible parents an easier variant (kind ``easier``, parent = the
    retired task), so a weak archive gets a curriculum at its level instead of an empty
    pool. The more the archive fails, the larger the easier share. When no task is
    passed and none was retired (every evaluated task failed, so all stayed), the
    failed ones parent easier variants in place.
    """
    passed = [t for t in res.pool.active_tasks() if rates.get(t.id, 0.0) > 0.0]
    retired = [res.pool.get(task_id) for task_id in impossible]
    if passed or retired:
        return passed + retired
    return [t for t in res.pool.active_tasks() if t.id in rates]


def refill_request(
    res: RunResources, parents: Sequence[Task], rates: dict[str, float], rng: random.Random
) -> AdaptRequest:
    """One refill proposal: a parent drawn uniformly from ``parents`` (see above)."""
    task = rng.choice(list(parents))
    rate = rates.get(task.id, 0.0)
    kind = novel_kind(res.ctx.novel_related_share, rng) if rate > 0.0 else "easier"
    return AdaptRequest(task, kind, rate, tuple(res.pool.lineage(task)))


def archive_pass_rates(res: RunResources, archive: Sequence[ExpertId]) -> dict[str, float]:
    """Share of the archive passing each active task that every member has been scored on.

    A task with no evaluation yet has no rate: it is never retired or drawn for it.
    """
    task_ids, matrix, known = skills(res, archive)
    rates: dict[str, float] = {}
    for column, task_id in enumerate(task_ids):
        if archive and known[:, column].all():
            rates[task_id] = float(matrix[:, column].mean())
    return rates


def admit_task(res: RunResources, task: Task) -> bool:
    """Put an accepted task into the pool; True when it replaced an active parent.

    A harder or easier variant takes its parent's place (the parent is kept aside and
    comes back if the variant proves impossible); a new or novel task joins the pool.
    """
    res.index.upsert(task, status="active")
    if task.adaptation not in ("harder", "easier") or not task.parent_id:
        res.pool.admit(task)
        return False
    replaced = task.parent_id in res.pool.active
    res.pool.replace(task.parent_id, task)
    if replaced:
        res.index.set_status(task.parent_id, "retired")
    return replaced


def trim_pool(res: RunResources) -> Counter[str]:
    """Retire the oldest tasks beyond ``pool_max``; counts by reason."""
    retired: Counter[str] = Counter()
    for retirement in over_cap(res.pool.active_tasks(), res.ctx.pool_max):
        res.pool.retire(retirement.task_id, retirement.reason)
        res.index.set_status(retirement.task_id, "retired")
        retired["cap"] += 1
    return retired


def _admit(
    res: RunResources,
    candidates: list[Candidate],
    pending: list[Task] | None,
    phase: str,
    generation: int,
    started: float,
    retired: Counter[str] | None = None,
) -> int:
    """Count rejections, let a person review if asked, admit the rest, trim to the cap."""
    retired = Counter(retired or {})
    stages = Counter(c.stage for c in candidates if not c.accepted)
    examples = {c.stage: c.reason[:300] for c in candidates if not c.accepted}
    kinds = _by_kind(candidates, pending)
    tokens: Counter[str] = Counter()
    for candidate in candidates:
        tokens.update(candidate.tokens)
    for candidate in candidates:
        if not candidate.accepted:
            res.pool.reject(candidate.stage)
            if candidate.task is not None:
                keep_rejected(res, candidate.task, candidate.stage, candidate.reason, generation)
    accepted = (
        pending if pending is not None else [c.task for c in candidates if c.accepted and c.task]
    )
    if res.ctx.review_tasks:
        shown = {t.id: t for t in accepted}
        accepted, refused = review(res.run.root, accepted)
        for task_id, reason in refused.items():
            res.index.set_status(task_id, "rejected")
            res.pool.reject("reviewer")
            keep_rejected(res, shown[task_id], "reviewer", reason, generation)
            stages["reviewer"] += 1
            examples["reviewer"] = reason
            kinds[shown[task_id].adaptation or "create"]["refused"]["reviewer"] += 1
    for task in accepted:
        if admit_task(res, task):
            retired["replaced"] += 1
        kinds[task.adaptation or "create"]["admitted"] += 1
    retired.update(trim_pool(res))
    res.tokens.update(tokens)
    res.run.log(
        "phase",
        phase=phase,
        generation=generation,
        seconds=round(time.perf_counter() - started, 2),
        accepted=[t.id for t in accepted],
        rejected=dict(stages),
        rejection_examples=examples,
        by_kind={k: {**v, "refused": dict(v["refused"])} for k, v in kinds.items()},
        retired=dict(retired),
        tokens=dict(tokens),
        pool_size=len(res.pool.active),
    )
    if candidates or pending is not None or retired:
        print(
            f"[gen {generation} {phase}] accepted {len(accepted)}, rejected "
            f"{sum(stages.values())} {dict(stages) or ''}; retired {dict(retired) or 0}; "
            f"pool {len(res.pool.active)}",
            flush=True,
        )
    return sum(tokens.values())


def _by_kind(candidates: list[Candidate], pending: list[Task] | None) -> dict[str, Any]:
    """Proposed and refused candidates per adaptation kind (admitted is filled later)."""
    kinds: dict[str, Any] = defaultdict(
        lambda: {"proposed": 0, "admitted": 0, "refused": Counter()}
    )
    for candidate in candidates:
        kinds[candidate.kind]["proposed"] += 1
        if not candidate.accepted:
            kinds[candidate.kind]["refused"][candidate.stage] += 1
    for task in pending or []:
        kinds[task.adaptation or "create"]["proposed"] += 1
    return kinds


def keep_rejected(res: RunResources, task: Task, stage: str, reason: str, generation: int) -> None:
    """Keep a refused candidate in ``rejected/`` (the report maps accepted vs rejected)."""
    record = {
        "task": task.model_dump(mode="json"),
        "stage": stage,
        "reason": reason[:500],
        "generation": generation,
    }
    atomic.write_json(res.run.rejected_file(task.id), record)
