"""Benchmark: do bred experts answer differently enough to cover more than the seed does?

From the bundled seed and the same budget of children, N experts are made three ways:
(a) today's default mutation (svd_noise with the Context defaults), (b) svd_noise with
the sigma / keep rank given (the best of a --sweep), (c) the specialize mutation: child
i is fine-tuned on the seed's own correct answers (sampled at T = 0.7) to the practice
questions of one domain (domains in turn; ``bench/data/diversity_practice.jsonl``, none
of them in the test set). Every child must pass the gibberish check. Each set answers
a multiple-choice test set greedily (``bench/data/diversity_mc.jsonl``, or --questions);
the greedy task force of --force members is scored by coverage, beside 8 samples of
the seed at T = 0.7 answering the same questions in the same run. Prints accuracy,
disagreement and coverage gains per set; the last line is ``coverage ratio: X.XX``
(best evolved task force over the seed samples).

--sweep instead measures disagreement, coverage and gibberish rejections of svd_noise
children for every mutation_sigma x mutation_keep_rank pair given.

Usage: .venv/bin/python bench/diversity.py [--n 8] [--sigma 1.0 --keep-rank 4]
       .venv/bin/python bench/diversity.py --sweep --sigmas 0.25,0.5,1,2 --keep-ranks 4,8
       .venv/bin/python bench/diversity.py --smoke   (2 experts, 8 questions: proves it runs)
"""

import argparse
import asyncio
import dataclasses
import hashlib
import socket
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from acdc.agents.benchmark_file import BenchmarkItem, load_benchmark
from acdc.agents.subjects import PROMPTS as SUBJECT_PROMPTS
from acdc.context import Context
from acdc.models import subject_concurrency
from acdc.population.bootstrap import Population, bootstrap, make_breeder
from acdc.population.breeding import Breeder
from acdc.population.client import PopulationClient, open_client
from acdc.population.coverage import coverage, greedy_task_force
from acdc.population.diversity import greedy_gains, pairwise_disagreement
from acdc.population.finetune import Example
from acdc.population.finetune_data import benchmark_questions, drop_benchmark
from acdc.population.gibberish import check_expert
from acdc.population.operators.specialize import Specialize
from acdc.population.server import PopulationServer
from acdc.prompts.loader import load_prompt

DATA = Path(__file__).parent / "data"
SEED_SAMPLES = 8
SAMPLE_TEMPERATURE = 0.7


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def domains(path: Path) -> list[str]:
    """The ``domain`` of each line of a bench data file (the practice niches)."""
    import json

    return [json.loads(line).get("domain", "all") for line in path.read_text().splitlines()]


class Answers:
    """Answers of experts (or seed samples) to questions, through one client."""

    def __init__(
        self, client: PopulationClient, items: Sequence[BenchmarkItem], ctx: Context
    ) -> None:
        self.client, self.items, self.ctx = client, items, ctx
        prompt = load_prompt("subject_answer", SUBJECT_PROMPTS["subject_answer"], ctx.prompts_dir)
        self.prompts = [prompt.render(instruction=i.instruction()) for i in items]
        self.limit = asyncio.Semaphore(subject_concurrency(ctx))

    async def one(self, expert: str, index: int, temperature: float, sample: int) -> str:
        """The answer text of ``expert`` to question ``index`` (sample ``sample``)."""
        extra: dict[str, int] = {}
        if temperature > 0:
            digest = hashlib.sha256(f"{expert}|{index}|{sample}".encode()).hexdigest()
            extra["seed"] = int(digest[:8], 16)
        async with self.limit:
            reply = await self.client.chat(
                expert,
                [{"role": "user", "content": self.prompts[index]}],
                max_tokens=self.ctx.subject_max_tokens,
                temperature=temperature,
                **extra,
            )
        return str(reply.text)

    async def table(
        self, expert: str, temperature: float = 0.0, sample: int = 0
    ) -> tuple[list[str], list[bool]]:
        """(answer keys, correct) of ``expert`` on every question."""
        texts = await asyncio.gather(
            *(self.one(expert, q, temperature, sample) for q in range(len(self.items)))
        )
        keys = [item.key(t) or "" for item, t in zip(self.items, texts, strict=True)]
        right = [item.correct(t) for item, t in zip(self.items, texts, strict=True)]
        return keys, right


async def score(answers: Answers, experts: Sequence[str], force: int) -> dict[str, object]:
    """Accuracy, disagreement and greedy coverage of ``experts`` answering greedily."""
    tables = [await answers.table(e) for e in experts]
    return figures([k for k, _ in tables], [r for _, r in tables], force)


def figures(keys: list[list[str]], right: list[list[bool]], force: int) -> dict[str, object]:
    """The printed figures of one set of answer rows."""
    solved = np.array(right, dtype=bool)
    accuracy = solved.mean(axis=1).tolist()
    picked = greedy_task_force(solved, force, accuracy)
    return {
        "accuracy": accuracy,
        "disagreement": pairwise_disagreement(keys),
        "coverage": coverage(solved, picked),
        "gains": greedy_gains(solved, force),
    }


def show(name: str, result: dict[str, object]) -> None:
    accuracy = result["accuracy"]
    assert isinstance(accuracy, list)
    gains = ", ".join(f"+{g:.0%}" for g in result["gains"])  # type: ignore[attr-defined]
    print(
        f"{name:<34} accuracy {min(accuracy):.2f}-{max(accuracy):.2f}  disagreement "
        f"{result['disagreement']:.2f}  coverage {result['coverage']:.3f}  gains {gains}",
        flush=True,
    )


async def sane(client: PopulationClient, experts: Sequence[str]) -> list[str]:
    """The experts that pass the gibberish check (rejections printed)."""
    kept = []
    for expert in experts:
        verdict = await check_expert(client, expert)
        if verdict.ok:
            kept.append(expert)
        else:
            print(f"  gibberish check rejects {expert}: {verdict.reason}", flush=True)
    return kept


def children(breeder: Breeder, population: Population, count: int, salt: int) -> list[str]:
    """``count`` children of the seed, bred with seeds ``salt``, ``salt + 1``, ..."""
    parents = population.seed_ids[:1]
    return [breeder.breed(parents, seed=salt + i, generation=1).id for i in range(count)]


async def niche_examples(
    answers: Answers, practice: Sequence[BenchmarkItem], niches: Sequence[str], niche: str
) -> list[Example]:
    """The seed's correct sampled answers to the practice questions of ``niche``."""
    ids = [i for i, d in enumerate(niches) if d == niche]
    found = []
    for index in ids:
        for sample in range(4):
            text = await answers.one(
                answers.ctx.served_model_name, index, SAMPLE_TEMPERATURE, sample
            )
            if practice[index].correct(text):
                found.append(Example(answers.prompts[index], text))
    return list(dict.fromkeys(found))


async def run(args: argparse.Namespace, ctx: Context, population: Population) -> None:
    items = load_benchmark(args.questions)[: args.limit or None]
    practice = load_benchmark(args.practice)
    niches = domains(args.practice)
    with PopulationServer(ctx, population.base_dir, Path(ctx.runs_dir) / "vllm.log") as server:
        async with open_client(ctx, server.urls, population.store) as client:
            answers = Answers(client, items, ctx)
            seed_rows = [
                await answers.table(ctx.served_model_name, SAMPLE_TEMPERATURE, s)
                for s in range(args.seed_samples)
            ]
            seed = figures([k for k, _ in seed_rows], [r for _, r in seed_rows], args.force)
            show(f"seed, {args.seed_samples} samples at T={SAMPLE_TEMPERATURE}", seed)
            if args.sweep:
                await sweep(args, ctx, population, client, answers)
                return
            results = {}
            default = children(make_breeder(ctx, population), population, args.n, 0)
            results["(a) default svd_noise"] = await score(
                answers, await sane(client, default), args.force
            )
            tuned = dataclasses.replace(
                ctx, mutation_sigma=args.sigma, mutation_keep_rank=args.keep_rank
            )
            best = children(make_breeder(tuned, population), population, args.n, 100)
            name = f"(b) svd_noise sigma {args.sigma:g} k {args.keep_rank}"
            results[name] = await score(answers, await sane(client, best), args.force)
            special = await specialized(args, ctx, population, answers, practice, niches)
            results["(c) specialize"] = await score(
                answers, await sane(client, special), args.force
            )
            for label, result in results.items():
                show(label, result)
    best_force = max(float(r["coverage"]) for r in results.values())  # type: ignore[arg-type]
    print(f"coverage ratio: {best_force / max(float(seed['coverage']), 1e-9):.2f}")  # type: ignore[arg-type]


async def specialized(
    args: argparse.Namespace,
    ctx: Context,
    population: Population,
    answers: Answers,
    practice: Sequence[BenchmarkItem],
    niches: Sequence[str],
) -> list[str]:
    """N children of the seed, each fine-tuned on the seed's correct answers in one domain."""
    practice_answers = Answers(answers.client, practice, ctx)
    held_out = benchmark_questions([args.questions])
    breeder = make_breeder(dataclasses.replace(ctx, mutation="specialize"), population)
    made = []
    order = list(dict.fromkeys(niches))
    for i in range(args.n):
        niche = order[i % len(order)]
        examples = drop_benchmark(
            await niche_examples(practice_answers, practice, niches, niche), held_out
        )
        if not examples:
            print(f"  no correct seed answer in niche {niche}; skipped", flush=True)
            continue
        pairs = tuple((e.prompt, e.answer) for e in examples)
        assert isinstance(breeder.mutation, Specialize)
        mutation = dataclasses.replace(breeder.mutation, niche=niche, examples=pairs)
        child = dataclasses.replace(breeder, mutation=mutation)
        record = await asyncio.to_thread(
            child.breed, population.seed_ids[:1], seed=200 + i, generation=1
        )
        training = record.training or {}
        print(
            f"  specialized {record.id} on {niche}: {len(pairs)} examples, loss "
            f"{training.get('loss_before')} -> {training.get('loss_after')}",
            flush=True,
        )
        made.append(record.id)
    return made


async def sweep(
    args: argparse.Namespace,
    ctx: Context,
    population: Population,
    client: PopulationClient,
    answers: Answers,
) -> None:
    """Disagreement, coverage and rejections of svd_noise children per (sigma, keep rank)."""
    for sigma in args.sigmas:
        for keep_rank in args.keep_ranks:
            setting = dataclasses.replace(ctx, mutation_sigma=sigma, mutation_keep_rank=keep_rank)
            made = children(make_breeder(setting, population), population, args.n, 1000)
            kept = await sane(client, made)
            label = f"sigma {sigma:g} keep_rank {keep_rank} ({len(made) - len(kept)} rejected)"
            if kept:
                show(label, await score(answers, kept, args.force))
            else:
                print(f"{label:<34} every child rejected", flush=True)


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="children made per method")
    parser.add_argument("--force", type=int, default=8, help="greedy task force size")
    parser.add_argument("--questions", type=Path, default=DATA / "diversity_mc.jsonl")
    parser.add_argument("--practice", type=Path, default=DATA / "diversity_practice.jsonl")
    parser.add_argument("--limit", type=int, default=0, help="use the first K questions (0 = all)")
    parser.add_argument("--seed-samples", type=int, default=SEED_SAMPLES)
    parser.add_argument("--sigma", type=float, default=1.0, help="(b): mutation_sigma")
    parser.add_argument("--keep-rank", type=int, default=4, help="(b): mutation_keep_rank")
    parser.add_argument("--steps", type=int, default=0, help="(c): fine-tune steps (0 = Context)")
    parser.add_argument("--max-tokens", type=int, default=256, help="answer token limit")
    parser.add_argument("--sweep", action="store_true", help="sweep sigma x keep rank instead")
    parser.add_argument("--sigmas", type=floats, default=[0.25, 0.5, 1.0, 2.0, 4.0])
    parser.add_argument(
        "--keep-ranks", type=lambda t: [int(v) for v in t.split(",")], default=[4, 8, 16]
    )
    parser.add_argument("--smoke", action="store_true", help="2 experts, 8 questions, 2 steps")
    args = parser.parse_args()
    if args.smoke:
        args.n, args.force, args.limit, args.seed_samples = 2, 2, 8, 2
        args.steps, args.max_tokens = 2, 64
        args.sigmas, args.keep_ranks = [0.25, 4.0], [4]
    work = Path(tempfile.mkdtemp(prefix="acdc-diversity-"))
    ctx = Context(
        runs_dir=str(work),
        run_id="bench",
        vllm_port=free_port(),
        max_loras=min(args.n, 8),
        max_loaded_adapters=max(args.n, 8),
        subject_max_tokens=args.max_tokens,
        **({"specialize_steps": args.steps} if args.steps else {}),
    )
    print(
        f"diversity bench: {args.n} children per method, task force of {args.force}, "
        f"{args.questions.name}; work dir {work}",
        flush=True,
    )
    asyncio.run(run(args, ctx, bootstrap(ctx)))


if __name__ == "__main__":
    main()
