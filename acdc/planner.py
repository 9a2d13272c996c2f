"""``acdc plan``: what a run will cost before anything starts (calls, tokens, hours, USD).

The loop's sizes fix how many calls each role makes: every expert answers every scored
instance of every active task once (evaluation records are keyed), children are bred
and evaluated each generation, the pool grows by scientist micro-batches through the
judge's review and the curator, and every ``adapt_every`` generations ``adapt_parents``
candidates are written and the survivors answer the admitted ones. The planner walks
the run generation by generation, because the pool it evaluates on changes at each
adaptation: tasks no archive member passes are retired (a weak seed loses most of its
pool at the first adaptation), admitted variants replace their parents or join, and
refill proposals (within ``adapt_budget``) bring the pool back towards its target.

Tokens per call, acceptance rates and the pool's retirement come from a previous run's
``metrics.jsonl`` when one is given (measured), else from :data:`ASSUMED`. Time is
generated tokens over the given throughput; dollars use the roles' ``<role>_price``.
It is an estimate of the expected path; the output says which inputs were measured.
Measuring a run is ``acdc/planner_measure.py``'s job, printing the plan
``acdc/planner_render.py``'s.
"""

import math
from dataclasses import dataclass
from pathlib import Path

from acdc.context import Context
from acdc.planner_measure import Drafting, Measured
from acdc.tasks import seed_tasks_dir

ROLES = ("subjects", "judge", "scientist", "curator")

ASSUMED: dict[str, float] = {
    "reply_share": 0.5,  # a reply uses half its max_tokens on average
    "subject_prompt": 150.0,  # tokens of the answer prompt and one instance
    "judge_prompt": 900.0,  # rubric, instance, reference and the fenced answer
    "scientist_prompt": 1200.0,  # instructions, similar tasks, the parent task
    "curator_prompt": 1000.0,  # the candidate and its nearest accepted tasks
    "curator_checks": 0.5,  # candidates near enough to an accepted task to be checked
    "acceptance": 0.5,  # candidates admitted per candidate written
    "retired_share": 0.0,  # active tasks retired as impossible at an adaptation
    "joining_share": 0.5,  # admitted variants that join the pool (not replacing a parent)
    "rubric_share": 0.1,  # evaluations graded by the judge (1 of the 10 seed tasks)
    "instances": 4.5,  # scored instances per task when all are scored (seed mean)
    "sanity_prompts": 3.0,  # gibberish-check prompts per child (prompts/sanity_check.txt)
}


@dataclass
class Load:
    """Calls and tokens of one role in one stretch of the run."""

    calls: float = 0.0
    prompt_tokens: float = 0.0
    completion_tokens: float = 0.0

    def add(self, calls: float, prompt: float, completion: float) -> None:
        """Add ``calls`` calls of ``prompt`` + ``completion`` tokens each."""
        self.calls += calls
        self.prompt_tokens += calls * prompt
        self.completion_tokens += calls * completion

    def scaled(self, factor: float) -> "Load":
        """This load repeated ``factor`` times."""
        return Load(
            self.calls * factor, self.prompt_tokens * factor, self.completion_tokens * factor
        )

    def plus(self, other: "Load") -> "Load":
        """The sum of two loads."""
        return Load(
            self.calls + other.calls,
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass
class Generation:
    """The planned loads of one generation and the active pool it evaluates on."""

    generation: int
    pool: float
    adapts: bool
    loads: dict[str, Load]


@dataclass
class Plan:
    """Per-generation loads, their sum over the run, and what the estimate rests on."""

    generations: list[Generation]
    total: dict[str, Load]
    pool: int
    adaptations: int
    notes: list[str]

    def hours(self, gpus: int, tokens_per_s: float, ctx: Context) -> float:
        """Hours to generate the locally served tokens at ``tokens_per_s`` per GPU."""
        local = sum(
            load.completion_tokens
            for role, load in self.total.items()
            if role == "subjects" or not _hosted(ctx, role)
        )
        return local / (gpus * tokens_per_s) / 3600.0

    def dollars(self, ctx: Context) -> dict[str, float]:
        """USD per priced role (``<role>_price``: [input, output] per million tokens)."""
        costs: dict[str, float] = {}
        for role in ROLES[1:]:
            price = list(getattr(ctx, f"{role}_price", []) or [])
            if len(price) == 2:
                load = self.total[role]
                costs[role] = (
                    load.prompt_tokens * price[0] + load.completion_tokens * price[1]
                ) / 1e6
        return costs


def _hosted(ctx: Context, role: str) -> bool:
    """A role on a hosted API (``provider:model`` with no base URL) uses no local GPU."""
    model, url = getattr(ctx, f"{role}_model"), getattr(ctx, f"{role}_base_url")
    return ":" in model and not url


def plan(ctx: Context, measured: Measured | None = None) -> Plan:
    """Estimate calls and tokens of ``ctx``'s run, generation by generation."""
    m = measured or Measured()
    notes: list[str] = []
    a = ASSUMED
    share = a["reply_share"]
    instances = ctx.instances_per_task or a["instances"]
    seeds = 1 + len(ctx.seed_adapters) + len(ctx.seed_finetunes)
    create, adapt = m.drafting.get("create"), m.drafting.get("adapt")
    create_rate = (create and create.acceptance) or a["acceptance"]
    adapt_rate = (adapt and adapt.acceptance) or a["acceptance"]
    retired_share = a["retired_share"] if m.retired_share is None else m.retired_share
    joining_share = a["joining_share"] if m.joining_share is None else m.joining_share

    # Pool growth before generation 1, bounded by task_rounds micro-batches.
    seed_tasks = _seed_task_count(ctx)
    wanted = max(0.0, ctx.initial_pool - seed_tasks)
    growth = min(math.ceil(wanted / create_rate), ctx.task_batch * ctx.task_rounds)
    pool = int(min(ctx.pool_max, seed_tasks + growth * create_rate))
    if pool < ctx.initial_pool:
        cap = (
            f"pool_max {ctx.pool_max}"
            if pool == ctx.pool_max
            else f"task_batch x task_rounds = {ctx.task_batch * ctx.task_rounds} candidates"
        )
        notes.append(f"the pool likely reaches {pool} of initial_pool {ctx.initial_pool} ({cap})")
    # Evaluation records count a subject's reply tokens only; role calls count both.
    subject_split = (a["subject_prompt"], m.subject_tokens or share * ctx.subject_max_tokens)
    # A run whose judge graded nothing (uncalibrated: rubric tasks are refused) makes no
    # grading calls; otherwise the judge grades the rubric share of evaluations.
    rubric_share = 0.0 if m.judge_tokens_per_evaluation == 0 else a["rubric_share"]

    def evaluations(count: float) -> dict[str, Load]:
        loads = {r: Load() for r in ROLES}
        loads["subjects"].add(count, *subject_split)
        judged = count * rubric_share
        prompt, reply = a["judge_prompt"], share * ctx.judge_max_tokens
        if m.judge_tokens_per_evaluation and judged:
            prompt, reply = _split(prompt, reply, m.judge_tokens_per_evaluation / rubric_share)
        loads["judge"].add(judged, prompt, reply)
        return loads

    def candidates(count: float, drafting: Drafting | None) -> dict[str, Load]:
        loads = {r: Load() for r in ROLES}
        calls = {
            "scientist": 1 + ctx.reflection_rounds,
            "judge": 1.0 if ctx.validate_tasks else 0.0,
            "curator": a["curator_checks"],
        }
        measured_roles = drafting.tokens_per_candidate if drafting else {}
        for role, per_candidate in calls.items():
            prompt = a[f"{role}_prompt"]
            reply = share * getattr(ctx, f"{role}_max_tokens")
            if role in measured_roles and per_candidate:
                prompt, reply = _split(prompt, reply, measured_roles[role] / per_candidate)
            loads[role].add(count * per_candidate, prompt, reply)
        return loads

    calibration = {r: Load() for r in ROLES}
    calibration["judge"].add(
        _calibration_pairs(ctx), a["judge_prompt"], share * ctx.judge_max_tokens
    )
    sanity = a["sanity_prompts"]
    generations: list[Generation] = []
    active = float(pool)
    for g in range(1, ctx.generations + 1):
        if g == 1:
            experts = seeds + ctx.initial_population + ctx.children_per_generation
            parts = [
                evaluations(experts * active * instances),
                candidates(growth, create),
                _sanity((ctx.initial_population + ctx.children_per_generation) * sanity),
                calibration,
            ]
        else:
            parts = [
                evaluations(ctx.children_per_generation * active * instances),
                _sanity(ctx.children_per_generation * sanity),
            ]
        adapts = g % ctx.adapt_every == 0
        evaluated_on = active
        if adapts:
            # "Unless all would go": at least one task survives the retirement.
            kept = max(1.0, active * (1.0 - retired_share))
            joined = ctx.adapt_parents * adapt_rate * joining_share
            active = min(float(ctx.pool_max), kept + joined)
            # The refill: proposals until the pool is back at its target, within budget.
            short = max(0.0, ctx.pool_target - active)
            room = float(ctx.adapt_budget - ctx.adapt_parents)
            refills = min(room, short / adapt_rate) if adapt_rate > 0 else room
            active = min(float(ctx.pool_max), active + refills * adapt_rate)
            proposals = ctx.adapt_parents + refills
            parts += [
                candidates(proposals, adapt),
                evaluations((ctx.archive_size + seeds) * proposals * adapt_rate * instances),
            ]
        generations.append(Generation(g, evaluated_on, adapts, _merge(*parts)))
    total = _merge(*(gen.loads for gen in generations))
    adaptations = sum(gen.adapts for gen in generations)
    if measured is None:
        notes.append(
            "tokens per call and rates assumed (no --from-run): see ASSUMED in acdc/planner.py"
        )
        notes.append(
            "no task is assumed retired: a weak seed passes few tasks and loses most of its "
            "pool at the first adaptation (plan --from-run a short run of it to see)"
        )
    else:
        notes.append(
            f"tokens per call, acceptance and retirement measured in {m.source} "
            f"(retired share {retired_share:.2f} of the pool per adaptation)"
        )
    return Plan(generations, total, pool, adaptations, notes)


def _seed_task_count(ctx: Context) -> int:
    """Hand-written tasks the pool starts from: the files of the run's seed task folder."""
    folder = Path(ctx.seed_tasks_dir) if ctx.seed_tasks_dir else seed_tasks_dir()
    return len(list(folder.glob("*.json")))


def _calibration_pairs(ctx: Context) -> float:
    """Labelled pairs the judge grades at bootstrap (its calibration), if the run has one."""
    size = getattr(ctx, "judge_calibration_size", None)
    if size is None:
        return 0.0
    path = Path(getattr(ctx, "judge_pairs_file", "") or "bench/data/judge_pairs.jsonl")
    pairs = len(path.read_text().splitlines()) if path.is_file() else 40
    return float(min(size, pairs) if size else pairs)


def _split(prompt: float, reply: float, total: float) -> tuple[float, float]:
    """Share a measured per-call total between prompt and reply in the assumed ratio."""
    whole = prompt + reply
    return (total * prompt / whole, total * reply / whole) if whole else (0.0, total)


def _sanity(calls: float) -> dict[str, Load]:
    loads = {r: Load() for r in ROLES}
    loads["subjects"].add(calls, ASSUMED["subject_prompt"], 48.0)
    return loads


def _merge(*parts: dict[str, Load]) -> dict[str, Load]:
    merged = {r: Load() for r in ROLES}
    for part in parts:
        for role, load in part.items():
            merged[role] = merged[role].plus(load)
    return merged
