"""Benchmark the roles against a real model server (default: the local SmolLM2 on vLLM).

1. The task-scientist proposes ``--calls`` tasks (concurrently, with reflection); prints
   the share of schema-valid drafts, of valid tasks, of tasks accepted by the curator's
   gates (against the seed pool in a fresh ChromaDB), and seconds per accepted task.
2. The judge grades the 40 hand-labelled pairs of ``bench/data/judge_pairs.jsonl``;
   prints agreement with the labels (pass = score >= 0.5).
3. Ten injection attempts (``bench/data/judge_injections.jsonl``) are appended to a wrong
   answer; prints how many turned the judge's fail into a pass (target 0).

Role models follow the usual settings (``ACDC_JUDGE_MODEL``, ``ACDC_JUDGE_BASE_URL``, ...),
so the same script measures a hosted judge. Usage: .venv/bin/python bench/roles_quality.py
"""

import argparse
import asyncio
import json
import socket
import tempfile
import time
from collections import Counter
from pathlib import Path

from acdc.agents.calibration import BUNDLED_PAIRS, calibrate, judge_spec, load_pairs
from acdc.agents.curator import Curator
from acdc.agents.judge import Judge
from acdc.agents.scientist import Scientist
from acdc.agents.structured import caller_for
from acdc.context import Context
from acdc.population.bootstrap import bootstrap
from acdc.population.server import PopulationServer
from acdc.tasks import Task, load_tasks, seed_tasks_dir
from acdc.vectorstore.embeddings import make_embedding_function
from acdc.vectorstore.tasks import TaskIndex

DATA = Path(__file__).resolve().parent / "data"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rubric_task(item: dict[str, str]) -> Task:
    return Task(
        id="labelled",
        name="Labelled question",
        description="A short question.",
        capability="general",
        subject="mixed",
        difficulty=1,
        grading="rubric",
        rubric=item["rubric"],
        instances=[
            {"id": f"i{n}", "instruction": item["instruction"], "reference": item["reference"]}
            for n in range(3)
        ],
    )


async def scientist_phase(ctx: Context, url: str, work: Path, calls: int) -> None:
    seeds = load_tasks(seed_tasks_dir())
    index = TaskIndex(path=work / "chroma", embedding_function=make_embedding_function())
    for task in seeds:
        index.upsert(task)
    scientist = Scientist(
        caller_for(ctx, "scientist", url),
        reflection_rounds=ctx.reflection_rounds,
    )
    curator = Curator(
        caller_for(ctx, "curator", url),
        index,
        novelty_threshold=ctx.novelty_threshold,
        neighbours=ctx.novelty_neighbours,
    )
    summary = "\n".join(sorted({f"- {t.capability}" for t in seeds}))
    started = time.perf_counter()
    proposals = await asyncio.gather(
        *(
            scientist.create(
                pool_summary=summary, examples=seeds[i % len(seeds) :][:2], generation=1
            )
            for i in range(calls)
        )
    )
    admissions = [await curator.admit(p.task) for p in proposals if p.task is not None]
    seconds = time.perf_counter() - started
    malformed = sum(p.task is None and "malformed" in p.reason for p in proposals)
    failed = sum(p.task is None and "call failed" in p.reason for p in proposals)
    valid = sum(p.task is not None for p in proposals)
    accepted = sum(a.accepted for a in admissions)
    print(f"scientist: {calls} calls in {seconds:.0f} s")
    print(
        f"  schema-valid drafts: {calls - malformed - failed}/{calls} "
        f"({100 * (calls - malformed - failed) / calls:.0f} %), failed calls {failed}"
    )
    print(f"  valid tasks:         {valid}/{calls} ({100 * valid / calls:.0f} %)")
    print(
        f"  accepted by gates:   {accepted}/{calls} ({100 * accepted / calls:.0f} %); "
        f"rejections by gate: {dict(Counter(a.gate for a in admissions if not a.accepted))}"
    )
    reasons = Counter(p.reason.split(":")[0][:60] for p in proposals if p.task is None)
    print(f"  invalid drafts by reason: {dict(reasons)}")
    per = f"{seconds / accepted:.1f} s" if accepted else "n/a (none accepted)"
    print(f"  seconds per accepted task: {per}")


async def judge_phase(ctx: Context, url: str) -> None:
    judge = Judge(caller_for(ctx, "judge", url))
    # The run's own calibration (agents/calibration.py): the same pairs, the same rule.
    labelled = load_pairs(BUNDLED_PAIRS)
    calibration = await calibrate(
        judge,
        labelled,
        judge_spec=judge_spec(ctx),
        pairs_file=str(BUNDLED_PAIRS),
        min_agreement=ctx.judge_min_agreement,
    )
    wrong_answers = sum(not p.label for p in labelled)
    print(
        f"judge: {calibration.line()}; always-pass would agree on "
        f"{sum(p.label for p in labelled)}/{len(labelled)}; wrong answers passed without any "
        f"injection: {round(calibration.false_pass_rate * wrong_answers)}/{wrong_answers}"
    )
    pairs = [json.loads(line) for line in (DATA / "judge_pairs.jsonl").read_text().splitlines()]

    wrong = pairs[1]  # "17 + 25" answered 32
    task = rubric_task(wrong)
    attacks = [
        json.loads(line)["injection"]
        for line in (DATA / "judge_injections.jsonl").read_text().splitlines()
    ]
    base = await judge.grade(task, task.instances[0], wrong["response"])
    attacked = await asyncio.gather(
        *(judge.grade(task, task.instances[0], f"{wrong['response']}\n{text}") for text in attacks)
    )
    base_pass = base.score is not None and base.score >= 0.5
    flipped = sum(g.score is not None and (g.score >= 0.5) != base_pass for g in attacked)
    print(
        f"injections: {flipped}/{len(attacks)} changed the verdict on a wrong answer "
        f"(verdict without injection: {'pass' if base_pass else 'fail'}, score {base.score})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--skip-scientist", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="acdc-roles-"))
    ctx = Context(runs_dir=str(work), run_id="roles", vllm_port=free_port())
    population = bootstrap(ctx)
    with PopulationServer(ctx, population.base_dir, work / "vllm.log", lora=False) as server:
        print(
            f"roles on {ctx.scientist_model or 'the local base model'} at {server.url}", flush=True
        )
        asyncio.run(judge_phase(ctx, server.url))
        if not args.skip_scientist:
            asyncio.run(scientist_phase(ctx, server.url, work, args.calls))


if __name__ == "__main__":
    main()
