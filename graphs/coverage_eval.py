"""``acdc eval coverage``: does the run's task force answer more than its baselines?

A benchmark is a JSONL file of multiple-choice items ``{question, options, answer}``
(answer: the option letter or the option's text) or exact-answer items
``{question, answer}``. Every member of the run's task force of size N and of its
baselines of the same N (the N fittest, N random, N temperature samples of the seed;
``population/taskforce.py``) answers every question, and so does the seed alone at the
members' temperature (the one-model answer a task force has to beat). The task forces
are picked from the complete skill matrix (``graphs/completion.py``: the missing
triples are evaluated first; cells still missing are masked and counted). The report
gives each member's accuracy and the seed's, each task force's coverage of the benchmark (a
question counts when some member answers it right: DESIGN.md section 4) next to its
coverage of the run's task pool, its diversity (mean pairwise disagreement of the
members' extracted answers, and the coverage each member adds to those before it:
``population/diversity.py``), and its best-of-N accuracy with every selector (what
the task force would return).

Members answer with the subject prompt (ending in an ``Answer:`` line), with the
subjects' token limit (``eval_max_tokens``, 0 = ``subject_max_tokens``), and are graded
like tasks (``agents/benchmark_file.py``). Majority votes on the same extracted
answers. An answer cut at the token limit before it states an answer is unanswered
(wrong, and counted apart).

The jobs are split by module: reading and grading the items
(``agents/benchmark_file.py``), generating and caching the members' answers
(``population/benchmark_answers.py``), scoring them and the selectors' picks (here), and
the printed report (``graphs/coverage_report.py``). Judge picks are not cached.
"""

import asyncio
import dataclasses
import hashlib
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from acdc import atomic
from acdc.agents.answers import has_answer
from acdc.agents.benchmark_file import BenchmarkItem, load_benchmark
from acdc.agents.calibration import calibration_of
from acdc.agents.judge import Judge
from acdc.agents.selectors import SELECTORS, select
from acdc.agents.subjects import PROMPTS as SUBJECT_PROMPTS
from acdc.context import Context
from acdc.graphs.coverage_report import report_text
from acdc.graphs.taskforce_resources import TaskForceResources, taskforce_resources
from acdc.population.benchmark_answers import AnswerCache, Slot, generate, slots_of
from acdc.population.coverage import coverage
from acdc.population.diversity import coverage_gains, pairwise_disagreement
from acdc.population.taskforce import TaskForce
from acdc.population.utilization import UtilizationSampler
from acdc.progress import Progress
from acdc.prompts.loader import Prompt, load_prompt
from acdc.rundir import RunDir

_SHOWN_NOTES = 20
"""Reading notes kept in the result and printed; the count covers them all."""


async def best_of_n(
    judge: Judge,
    items: Sequence[BenchmarkItem],
    answers: list[list[str]],
    name: str,
    ctx: Context,
    progress: Progress | None = None,
    cut: list[list[bool]] | None = None,
) -> tuple[dict[str, float], int]:
    """Accuracy of each selector's pick, and how many judge picks fell back to majority.

    ``answers[q]`` are the members' answers to ``q``; ``cut[q]`` tells which were cut at
    the token limit (those count only with an explicit answer). The fallback count tells a judge
    that fails (malformed output, context too short for N answers) from one that picks
    badly.

    Every pick runs at once; the judge's own concurrency limit paces the calls, so the
    server batches them.
    """
    flags = cut if cut is not None else [[False] * len(texts) for texts in answers]
    jobs = [
        (selector, item, texts, cuts)
        for selector in SELECTORS
        for item, texts, cuts in zip(items, answers, flags, strict=True)
    ]

    async def correct(
        selector: str, item: BenchmarkItem, texts: list[str], cuts: list[bool]
    ) -> tuple[bool, bool]:
        seed = f"{ctx.random_seed}|{name}|{selector}|{item.instruction()}"
        rng = random.Random(int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16))
        cut_texts = {text for text, was_cut in zip(texts, cuts, strict=True) if was_cut}

        def key(text: str) -> str | None:
            return item.key(text, text in cut_texts)

        pick = await select(selector, item.instruction(), texts, judge=judge, rng=rng, key=key)
        if progress is not None:
            progress.update(progress.done + 1, tokens=progress.tokens + pick.tokens)
        return item.correct(texts[pick.index], cuts[pick.index]), pick.selector != selector

    results = await asyncio.gather(*(correct(*job) for job in jobs))
    accuracy = {
        selector: sum(
            right
            for (chosen, _, _, _), (right, _) in zip(jobs, results, strict=True)
            if chosen == selector
        )
        / len(items)
        for selector in SELECTORS
    }
    return accuracy, sum(fell_back for _, fell_back in results)


async def _score_task_forces(
    res: TaskForceResources, ctx: Context, items: list[BenchmarkItem], cache: AnswerCache
) -> dict[str, Any]:
    """Every slot answers (cached), then the figures of each task force and of the seed."""
    plan = res.plan(ctx)
    prompt: Prompt = load_prompt(
        "subject_answer", SUBJECT_PROMPTS["subject_answer"], ctx.prompts_dir
    )
    prompts = [prompt.render(instruction=item.instruction()) for item in items]
    forces = plan.task_forces()
    seed = Slot(ctx.served_model_name, ctx.answer_temperature, 0)
    all_slots = [seed, *(slot for force in forces for slot in slots_of(force))]
    cached = sum(
        1 for s in dict.fromkeys(all_slots) for p in prompts if cache.get(s, p) is not None
    )
    answering = UtilizationSampler(res.server.urls).start()
    async with res.client() as client:
        generated = await generate(client, cache, prompts, all_slots, ctx)
    used = {"answers": answering.stop()}
    judge = res.judge(ctx)
    folder = RunDir(ctx.run_dir, read_only=True)
    calibration = await calibration_of(
        ctx, judge, folder.eval_calibration_file, reuse=[folder.calibration_file]
    )

    def texts(slot: Slot) -> list[str]:
        return [cache.get(slot, p) or "" for p in prompts]

    def cuts(slot: Slot) -> list[bool]:
        return [cache.truncated(slot, p) for p in prompts]

    def right(slot: Slot) -> list[bool]:
        return [
            item.correct(text, cut)
            for item, text, cut in zip(items, texts(slot), cuts(slot), strict=True)
        ]

    def unanswered(slot: Slot) -> int:
        """Answers cut at the token limit before stating an answer."""
        return sum(c and not has_answer(t) for t, c in zip(texts(slot), cuts(slot), strict=True))

    members = {
        s.expert_id: sum(right(s)) / len(items)
        for force in forces
        if force.name != "seed_samples"
        for s in slots_of(force)
    }
    cut_members = {
        s.expert_id: unanswered(s)
        for force in forces
        if force.name != "seed_samples"
        for s in slots_of(force)
    }
    progress = Progress("eval best-of-n", len(forces) * len(SELECTORS) * len(items))

    async def entry(force: TaskForce) -> dict[str, Any]:
        slots = slots_of(force)
        solved = np.array([right(s) for s in slots], dtype=bool)
        answers = [list(row) for row in zip(*(texts(s) for s in slots), strict=True)]
        cut = [list(row) for row in zip(*(cuts(s) for s in slots), strict=True)]
        accuracy, fallbacks = await best_of_n(judge, items, answers, force.name, ctx, progress, cut)
        return {
            "members": force.members,
            "temperature": force.temperature,
            "run_coverage": force.coverage,
            "accuracy": [float(row.mean()) for row in solved],
            "coverage": coverage(solved, list(range(len(slots)))),
            "coverage_gains": coverage_gains(solved, list(range(len(slots)))),
            "disagreement": pairwise_disagreement(
                [
                    [
                        item.key(t, c) or ""
                        for item, t, c in zip(items, texts(s), cuts(s), strict=True)
                    ]
                    for s in slots
                ]
            ),
            "best_of_n": accuracy,
            "judge_fallbacks": fallbacks,
            "unanswered": sum(unanswered(s) for s in slots),
        }

    picking = UtilizationSampler(res.server.urls).start()
    entries = await asyncio.gather(*(entry(force) for force in forces))
    used["best_of_n"] = picking.stop()
    progress.finish()
    report = {force.name: e for force, e in zip(forces, entries, strict=True)}
    return {
        "run": ctx.run_id,
        "n": plan.n,
        "questions": len(items),
        "members": members,
        "unanswered": cut_members,
        "max_tokens": cache.max_tokens,
        "seed": {
            "expert_id": seed.expert_id,
            "temperature": seed.temperature,
            "accuracy": sum(right(seed)) / len(items),
            "unanswered": unanswered(seed),
        },
        "pool_tasks": plan.tasks,
        "missing_cells": plan.missing_cells,
        "task_forces": report,
        "answers": {"generated": generated, "cached": cached},
        "judge_calibration": calibration.to_dict(),
        "utilization": {k: u.as_dict() for k, u in used.items() if u is not None},
    }


def evaluate_coverage(ctx: Context, benchmark: Path, n: int) -> dict[str, Any]:
    """Evaluate the run's task force of size ``n`` and its baselines; print and save.

    Returns:
        The result, also written to ``<run>/eval/<benchmark stem>-n<n>.json``.

    Raises:
        BenchmarkFileError: The benchmark file is malformed.
        ValueError: No task force can be formed (e.g. the run has no evaluations).
    """
    notes: list[str] = []
    items = load_benchmark(benchmark, notes)
    ctx = dataclasses.replace(ctx, taskforce_size=n)
    res = taskforce_resources(ctx)
    folder = RunDir(ctx.run_dir, read_only=True)
    cache = AnswerCache(folder.eval_answers_file, ctx.eval_max_tokens or ctx.subject_max_tokens)
    result = {
        "benchmark": str(benchmark),
        "benchmark_notes": {"count": len(notes), "first": notes[:_SHOWN_NOTES]},
        **asyncio.run(_score_task_forces(res, ctx, items, cache)),
    }
    path = folder.eval_result_file(benchmark.stem, n)
    atomic.write_json(path, result)
    print(report_text(result))
    print(f"written to {path}")
    return result
