"""The population phases of a generation: first experts, breeding, evaluation, archive.

Each function does one phase against the run's resources, logs one ``phase`` record to
``metrics.jsonl`` (seconds, tokens by role, counts) and returns what the graph keeps.
Randomness comes from seeds derived from ``random_seed``, the generation and the slot,
so a phase re-run after a kill makes the same children.
"""

import hashlib
import logging
import random
import time
from collections import Counter
from collections.abc import Sequence

from acdc.agents.calibration import ensure_calibration
from acdc.agents.curator import PROMPTS as CURATOR_PROMPTS
from acdc.agents.judge import PROMPTS as JUDGE_PROMPTS
from acdc.agents.scientist import PROMPTS as SCIENTIST_PROMPTS
from acdc.agents.subjects import PROMPTS as SUBJECT_PROMPTS
from acdc.graphs.niche_data import child_breeder
from acdc.graphs.resources import RunResources
from acdc.graphs.skill_matrix import counted_tasks, scored_instances, skills
from acdc.population import archive as dns
from acdc.population.gibberish import SanityVerdict, check_experts
from acdc.population.utilization import UtilizationSampler
from acdc.progress import Progress, RateSource
from acdc.prompts.loader import prompt_path
from acdc.runstore import EvalKey
from acdc.tasks import Task
from acdc.types import ExpertId

log = logging.getLogger(__name__)

PASS_WAIT_CAP = 30.0
"""Most seconds between two evaluation passes (the wait doubles from 1 s)."""
RATE_INTERVAL = 1.0
"""Seconds between readings of the server's token counter for the evaluation's rate."""


def derived_seed(*parts: object) -> int:
    """A 32-bit seed from the run's seed and the slot it is for."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).hexdigest()
    return int(digest[:8], 16)


def record_run(res: RunResources) -> None:
    """Write the config and the exact prompt files this start of the run uses."""
    res.run.record_config(res.ctx)
    names = [*SCIENTIST_PROMPTS, *JUDGE_PROMPTS, *CURATOR_PROMPTS, *SUBJECT_PROMPTS]
    names.append("sanity_check")
    digests = res.run.record_prompts({n: prompt_path(n, res.ctx.prompts_dir) for n in names})
    res.run.log("start", prompts=digests, server=res.server.url)
    res.ensure_server()
    path = res.run.calibration_file
    calibration = ensure_calibration(res.ctx, res.judge(), path, res.run_async)
    res.run.log("judge_calibration", **calibration.to_dict())


def _breed(res: RunResources, pool: Sequence[ExpertId], count: int, generation: int) -> list[str]:
    """Breed ``count`` children of parents drawn from ``pool``; keep those that read as text."""
    started = time.perf_counter()
    breeder = res.breeder()
    bred: list[ExpertId] = []
    progress = Progress(f"gen {generation} breed", count, unit="child")
    for slot in range(count):
        seed = derived_seed(res.ctx.random_seed, "breed", generation, slot)
        parents = random.Random(seed).sample(list(pool), min(2, len(pool)))
        maker = child_breeder(res, breeder, parents, pool, seed)
        bred.append(maker.breed(parents, seed=seed, generation=generation).id)
        progress.update(slot + 1)
    progress.finish()
    rejected: dict[ExpertId, str] = {}
    if res.ctx.sanity_check and bred:
        res.ensure_server()

        async def check() -> list[SanityVerdict]:
            async with res.client() as client:
                return await check_experts(client, bred, f"gen {generation} sanity check")

        rejected = {v.expert_id: v.reason for v in res.run_async(check()) if not v.ok}
    kept = [c for c in bred if c not in rejected]
    res.run.log(
        "phase",
        phase="breed",
        generation=generation,
        seconds=round(time.perf_counter() - started, 2),
        bred=bred,
        rejected=rejected,
    )
    for child, reason in rejected.items():
        print(f"[gen {generation} breed] rejected {child}: {reason}", flush=True)
    return kept


def initial_population(res: RunResources) -> list[ExpertId]:
    """The seeds plus ``initial_population`` children bred from them."""
    seeds = res.population.seed_ids
    return seeds + _breed(res, seeds, res.ctx.initial_population, generation=0)


def breed_children(res: RunResources, archive: list[ExpertId], generation: int) -> list[str]:
    """This generation's children; parents uniform among the survivors."""
    return _breed(res, archive, res.ctx.children_per_generation, generation)


def with_seeds(res: RunResources, experts: Sequence[ExpertId]) -> list[ExpertId]:
    """``experts`` plus the seeds, once each.

    The seeds are scored on every active task so the summary can set the archive beside
    them on the same tasks.
    """
    return list(dict.fromkeys([*experts, *res.population.seed_ids]))


def evaluate_missing(
    res: RunResources,
    experts: list[ExpertId],
    generation: int,
    tasks: Sequence[Task] | None = None,
    phase: str = "evaluate",
) -> int:
    """Evaluate the missing (expert, task, instance) triples; returns tokens generated.

    Args:
        res: The run's resources.
        experts: Who answers.
        generation: The generation the work is logged for.
        tasks: What they answer; the counted active pool (:func:`counted_tasks`) if None.
        phase: Name of the ``phase`` record and of the progress line.
    """
    # The progress line's tok/s is the server's own generation counter over the last
    # ~10 s (the judge's tokens included), as the server logs it: finished answers'
    # tokens over the whole elapsed time (grading, passes, server waits) read 8 tok/s
    # where the server generated 30-50.
    sampler = UtilizationSampler(res.server.urls, RATE_INTERVAL).start()
    try:
        return _evaluate_in_passes(res, experts, generation, tasks, phase, sampler.rate)
    finally:
        sampler.stop()


def _evaluate_in_passes(
    res: RunResources,
    experts: list[ExpertId],
    generation: int,
    tasks: Sequence[Task] | None,
    phase: str,
    rate: RateSource,
) -> int:
    started = time.perf_counter()
    by_id = {t.id: t for t in (counted_tasks(res) if tasks is None else tasks)}
    keys: list[EvalKey] = [
        (e, t.id, i.id) for e in experts for t in by_id.values() for i in scored_instances(res, t)
    ]
    store = res.run.evaluations()
    before = len(store.records())
    todo = len(store.missing(keys))
    progress = Progress(f"gen {generation} {phase}", todo, rate=rate)
    passes = res.ctx.evaluation_passes
    for attempt in range(1, passes + 1):
        res.ensure_server()
        written = len(store)

        def record(done: int, total: int, tok: int, earlier: int = progress.tokens) -> None:
            progress.update(done, total, earlier + tok)  # each pass counts tokens from 0

        async def run() -> Counter[str]:
            async with res.client() as client:
                subjects = res.subjects(client)
                await subjects.evaluate(keys, by_id, store, record)
                return subjects.unscored

        unscored = res.run_async(run())
        missing = store.missing(keys)
        if not missing or res.ledger.exhausted:  # the budget ends the run after this phase
            break
        log.warning("%d evaluations missing after attempt %d", len(missing), attempt)
        if attempt < passes:  # transient failures (429, 5xx, timeouts): give the server air
            time.sleep(min(2.0 ** (attempt - 1), PASS_WAIT_CAP))
    else:
        graders_only = set(unscored) == {"grader"}  # the server answered; grading waits
        if len(store) == written and not graders_only:  # nothing got through: down, not busy
            raise RuntimeError(
                f"{len(missing)} evaluations still missing after {passes} passes "
                f"(server at {res.server.url} unreachable?); fix it and resume the run"
            )
        log.warning(
            "%d evaluations left missing after %d passes (transient failures); later "
            "passes and a resume ask again, and the skill matrix masks them meanwhile",
            len(missing),
            passes,
        )
    progress.finish()
    new = store.records()[before:]
    subject = sum(r.tokens for r in new)
    judge = sum(r.judge_tokens for r in new)
    seconds = time.perf_counter() - started
    res.run.log(
        "phase",
        phase=phase,
        generation=generation,
        seconds=round(seconds, 2),
        calls=len(new),
        naive_calls=len(keys),
        left_missing=len(store.missing(keys)),
        errors=sum(1 for r in new if r.error),
        tokens={"subjects": subject, "judge": judge},
        judge_call_seconds=round(sum(r.judge_seconds for r in new), 2),
        subject_tokens_per_s=round(subject / seconds, 2) if seconds > 0 else 0.0,
    )
    return subject + judge


def select_archive(res: RunResources, experts: list[ExpertId], generation: int) -> list[str]:
    """Survivors of archive + children, stored as ``archive/gen-NNN.json``."""
    task_ids, matrix, known = skills(res, experts)
    selection = dns.select_survivors(
        experts, matrix, res.ctx.archive_size, res.ctx.selection, res.ctx.dns_k, known
    )
    res.run.write_archive(
        generation,
        {
            "generation": generation,
            "method": res.ctx.selection,
            "survivors": selection.survivors,
            "scores": selection.scores,
            "fitness": selection.fitness,
            "candidates": experts,
            "tasks": task_ids,
        },
    )
    return selection.survivors
