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
like tasks by the strict extractors of ``agents/answers.py``: an option letter for
multiple choice; otherwise the normalized final answer, or its number when the
reference is a number. Majority votes on the same extracted answers. An answer cut at
the token limit before it states an answer is unanswered (wrong, and counted apart).

Every answer is cached in ``<run>/eval/answers.jsonl`` (append-only), keyed by expert,
exact prompt, temperature, sample and token limit. A rerun or a smaller N generates
nothing (greedy, top-N and random members of a smaller N are prefixes, and so are the
seed's samples 0..N-1); a larger N generates only the new members' answers. Judge
picks are not cached.
"""

import asyncio
import dataclasses
import hashlib
import logging
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from acdc import atomic
from acdc.agents.answers import (
    choice_letter,
    final_answer,
    has_answer,
    normalize,
    numeric_answer,
)
from acdc.agents.calibration import calibration_of
from acdc.agents.judge import Judge
from acdc.agents.selectors import SELECTORS, select
from acdc.agents.subjects import PROMPTS as SUBJECT_PROMPTS
from acdc.context import Context
from acdc.graphs.benchmark_file import parse_item
from acdc.graphs.taskforce_resources import TaskForceResources, taskforce_resources
from acdc.models import subject_concurrency
from acdc.population.client import PopulationClient
from acdc.population.coverage import coverage
from acdc.population.diversity import coverage_gains, pairwise_disagreement
from acdc.population.taskforce import TaskForce
from acdc.population.utilization import UtilizationSampler
from acdc.progress import Progress
from acdc.prompts.loader import Prompt, load_prompt
from acdc.rundir import RunDir
from acdc.runstore import JsonlLog
from acdc.tasks import LETTERS, parse_reference_number
from acdc.types import ExpertId
from acdc.vectorstore.contamination import BenchmarkFileError, benchmark_lines

logger = logging.getLogger(__name__)

_SHOWN_NOTES = 20
"""Reading notes kept in the result and printed; the count covers them all."""


@dataclass(frozen=True)
class BenchmarkItem:
    """One question; ``answer`` is the option letter for multiple choice."""

    question: str
    answer: str
    options: tuple[str, ...] = ()

    def instruction(self) -> str:
        """The question as members and the judge see it, options lettered."""
        lines = [f"{LETTERS[i]}. {option}" for i, option in enumerate(self.options)]
        return "\n".join([self.question, *lines])

    def key(self, text: str, truncated: bool = False) -> str | None:
        """The answer ``text`` gives, in the form it is graded and voted on.

        ``truncated``: the answer was cut at the token limit, so only an explicit
        answer counts (no guess from the last line the reasoning reached).
        """
        if self.options:
            letter: str | None = choice_letter(text, list(self.options), truncated=truncated)
            return letter
        if _number(self.answer) is not None:
            value, _ = numeric_answer(text, truncated=truncated)
            return None if value is None else _number_key(value)
        found = final_answer(text, truncated=truncated)
        return normalize(found) if found is not None else None

    def correct(self, text: str, truncated: bool = False) -> bool:
        """Whether ``text`` answers this item right."""
        if self.options:
            return self.key(text, truncated) == self.answer
        reference = _number(self.answer)
        wanted = _number_key(reference) if reference is not None else normalize(self.answer)
        return self.key(text, truncated) == wanted


def _number(text: str) -> float | None:
    try:
        return parse_reference_number(text)
    except ValueError:
        return None


def _number_key(value: float) -> str:
    """A number as a vote: ``42`` and ``42.0`` are the same answer."""
    return format(value, ".10g")


def load_benchmark(path: Path, notes: list[str] | None = None) -> list[BenchmarkItem]:
    """The items of a benchmark JSONL file.

    ``notes`` receives one ``file:line: ...`` sentence per row read one way where the
    file allowed two (an integer answer that is both a label and an index).

    Raises:
        BenchmarkFileError: The path is a folder or unreadable, or a line is not an item
            (or not one that can be graded); the message names the file and line.
    """
    items: list[BenchmarkItem] = []
    for number, raw in benchmark_lines(path):
        row_notes: list[str] = []
        try:
            items.append(BenchmarkItem(*parse_item(raw, row_notes)))
        except ValueError as err:
            raise BenchmarkFileError(f"{path}:{number}: {err}") from None
        for note in row_notes:
            logger.warning("%s:%d: %s", path, number, note)
            if notes is not None:
                notes.append(f"{path}:{number}: {note}")
    if not items:
        raise BenchmarkFileError(f"{path} holds no questions")
    return items


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


async def _evaluate(
    res: TaskForceResources, ctx: Context, items: list[BenchmarkItem], cache: AnswerCache
) -> dict[str, Any]:
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
        **asyncio.run(_evaluate(res, ctx, items, cache)),
    }
    path = folder.eval_result_file(benchmark.stem, n)
    atomic.write_json(path, result)
    print(summary(result))
    print(f"written to {path}")
    return result


def summary(result: dict[str, Any]) -> str:
    """The printed report of an evaluation result."""
    n, questions, seed = result["n"], result["questions"], result["seed"]
    lines = [
        f"benchmark {result['benchmark']}: {questions} questions; run {result['run']}; N = {n}",
        f"answers: {result['answers']['generated']} generated, "
        f"{result['answers']['cached']} from the cache",
        *(
            f"server during {stage}: busy {u['busy_share']:.0%}, {u['mean_running']:.1f} "
            f"running, {u['tokens_per_s']:.0f} tokens/s"
            for stage, u in result.get("utilization", {}).items()
        ),
        f"member accuracy (unanswered: cut at {result.get('max_tokens', '?')} tokens "
        "before an answer):",
        *(
            f"  {expert:<40} {acc:.3f}  unanswered {result.get('unanswered', {}).get(expert, 0)}"
            for expert, acc in result["members"].items()
        ),
        f"seed alone (T={seed['temperature']:g}):",
        f"  {seed['expert_id']:<40} {seed['accuracy']:.3f}  unanswered {seed.get('unanswered', 0)}",
        f"task forces (coverage of the benchmark and of the run's {result['pool_tasks']} "
        f"tasks, then best-of-{n} accuracy by selector):",
    ]
    read = result.get("benchmark_notes", {})
    if read.get("count"):
        lines.insert(1, f"{read['count']} rows read one way of two (answer label over index):")
        lines[2:2] = [f"  {note}" for note in read["first"]]
    if result.get("missing_cells"):
        lines.insert(
            -1, f"skill matrix: {result['missing_cells']} cells not evaluated (masked in the pick)"
        )
    calibration = result.get("judge_calibration")
    if calibration:
        bar = (
            "" if calibration["trusted"] else f" (below the {calibration['min_agreement']:.0%} bar)"
        )
        lines.append(
            f"judge of the judge and tournament selectors ({calibration['judge']}): agreement "
            f"{calibration['agreement']:.0%} on {calibration['pairs']} labelled pairs, false "
            f"passes {calibration['false_pass_rate']:.0%}, {calibration['ungraded']} ungraded{bar}"
        )
    for name, force in result["task_forces"].items():
        picks = "  ".join(f"{s} {force['best_of_n'][s]:.3f}" for s in SELECTORS)
        pool = "  -  " if force["run_coverage"] is None else f"{force['run_coverage']:.3f}"
        lines.append(f"  {name:<13} coverage {force['coverage']:.3f}  pool {pool}  {picks}")
        if force["judge_fallbacks"]:
            lines.append(
                f"  {'':<13} the judge failed on {force['judge_fallbacks']} of {questions} "
                "questions (majority decided those)"
            )
        if force.get("unanswered"):
            lines.append(
                f"  {'':<13} {force['unanswered']} member answers cut before an answer "
                "(counted wrong)"
            )
        if "disagreement" in force:
            gains = ", ".join(f"+{g:.0%}" for g in force["coverage_gains"])
            lines.append(
                f"  {'':<13} disagreement {force['disagreement']:.2f}; coverage added per "
                f"member: {gains}"
            )
        members = ", ".join(force["members"])
        lines.append(f"  {'':<13} members (T={force['temperature']:g}): {members}")
    return "\n".join(lines)
