"""How the bundled seed does on the seed tasks: instance scores, passes and seed fitness.

Starts a vLLM CPU server on the seed (the bundled SmolLM2-135M-Instruct unless
``ACDC_BASE_MODEL`` names another), lets it answer the tasks of ``tasks/seed/`` the way a
run's subjects do (``Subjects``: prompts/subject_answer.txt, temperature 0, the
deterministic graders) and prints, for each setting ``N:TOKENS`` (the first N instances,
0 = all, answered with at most TOKENS tokens), every task's instance scores, its mean and
whether the seed passes it (mean >= pass_threshold), then the seed's fitness: the share of
tasks passed. Rubric tasks are left out, as in a run whose judge is below
judge_min_agreement (the bundled judge is). The defaults are the smoke config (3:64) and
the default config (0:128).

Usage: .venv/bin/python bench/seed_tasks.py [--settings 3:64 0:128] [--show] [--port P]
"""

import argparse
import asyncio
import dataclasses
import socket
import tempfile
from pathlib import Path

from acdc.agents.judge import Judge
from acdc.agents.structured import caller_for
from acdc.agents.subjects import Subjects
from acdc.context import Context
from acdc.population import archive
from acdc.population.bootstrap import Population, bootstrap
from acdc.population.client import open_client
from acdc.population.server import PopulationServer
from acdc.runstore import EvaluationStore
from acdc.tasks import Task, load_tasks, seed_tasks_dir


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


async def evaluate(
    ctx: Context, url: str, population: Population, tasks: list[Task], store: EvaluationStore
) -> None:
    """Let the seed answer every (task, instance) of ``tasks`` scored under ``ctx``."""
    seed = population.seed_ids[0]
    count = ctx.instances_per_task or None
    keys = [(seed, t.id, i.id) for t in tasks for i in t.instances[:count]]
    async with open_client(ctx, [url], population.store) as client:
        judge = Judge(caller_for(ctx, "judge", url), ctx.prompts_dir)  # no rubric task: unused
        subjects = Subjects(client, judge, max_tokens=ctx.subject_max_tokens, concurrency=16)
        await subjects.evaluate(keys, {t.id: t for t in tasks}, store)


def report(ctx: Context, seed: str, tasks: list[Task], store: EvaluationStore, show: bool) -> None:
    """Print each task's instance scores and pass, then the seed's fitness."""
    count = ctx.instances_per_task or None
    scored = {t.id: [i.id for i in t.instances[:count]] for t in tasks}
    means = store.mean_scores([seed], scored)
    skills = archive.skill_matrix(means, [seed], list(scored), ctx.pass_threshold)
    records = {r.key: r for r in store.records()}
    for task, passed in zip(tasks, skills[0], strict=True):
        scores = [records[(seed, task.id, i)].score for i in scored[task.id]]
        verdict = "PASS" if passed else "fail"
        listed = " ".join(f"{s:.2g}" for s in scores)
        print(f"  {verdict}  {means.get((seed, task.id), 0.0):.2f}  [{listed}]  {task.id}")
        for instance_id in scored[task.id] if show else []:
            response = records[(seed, task.id, instance_id)].response.replace("\n", " | ")
            print(f"          {instance_id}: {response[:160]!r}")
    fitness = archive.fitness(skills)[0]
    print(f"  seed fitness {fitness:.2f}: passes {int(skills.sum())} of {len(tasks)} tasks")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=["3:64", "0:128"])
    parser.add_argument("--show", action="store_true", help="print the seed's answers")
    parser.add_argument("--port", type=int, default=0, help="server port (0 = a free one)")
    args = parser.parse_args()
    tasks = [t for t in load_tasks(seed_tasks_dir()) if t.grading != "rubric"]
    work = Path(tempfile.mkdtemp(prefix="acdc-seed-tasks-"))
    ctx = Context(
        runs_dir=str(work),
        run_id="seed-tasks",
        vllm_port=args.port or free_port(),
        max_loras=2,
        max_num_seqs=32,
        kv_cache_gib=1,
    )
    population = bootstrap(ctx)
    print(f"CPU: {cpu_model()}; {len(tasks)} seed tasks (rubric ones left out)", flush=True)
    with PopulationServer(ctx, population.base_dir, work / "vllm.log") as server:
        for setting in args.settings:
            instances, tokens = (int(x) for x in setting.split(":"))
            run = dataclasses.replace(ctx, instances_per_task=instances, subject_max_tokens=tokens)
            store = EvaluationStore(work / f"evaluations-{instances}-{tokens}.jsonl")
            asyncio.run(evaluate(run, server.url, population, tasks, store))
            print(f"{instances or 'all'} instances, {tokens} tokens:", flush=True)
            report(run, population.seed_ids[0], tasks, store, args.show)


if __name__ == "__main__":
    main()
