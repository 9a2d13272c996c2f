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
"""

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acdc.context import Context
from acdc.rundir import RunDir
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
class Drafting:
    """Measured task writing of one kind: tokens per candidate by role, share admitted."""

    tokens_per_candidate: dict[str, float]
    acceptance: float | None


@dataclass
class Measured:
    """Means taken from a previous run's metrics (None: not measured, assumed)."""

    subject_tokens: float | None = None
    judge_tokens_per_evaluation: float | None = None
    drafting: dict[str, Drafting] = field(default_factory=dict)  # "create", "adapt"
    retired_share: float | None = None
    joining_share: float | None = None
    source: str = ""


DRAFTING_PHASES = {"seed_tasks": "create", "adapt_tasks": "adapt"}


def measure(run_dir: Path) -> Measured:
    """Means of a finished or stopped run, from its ``metrics.jsonl``.

    Subject and judge tokens per evaluation come from the evaluate phases; tokens per
    candidate and acceptance from the pool growth (``create``) and the adaptations
    (``adapt``) apart, since a fresh task costs the scientist more than a variant; the
    retired and joining shares from each adaptation's pool before (the last generation
    record) and after (the phase record).
    """
    path = RunDir(run_dir, read_only=True).metrics_file
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: give a run folder with metrics")
    calls, subject, judge = 0, 0.0, 0.0
    candidates: Counter[str] = Counter()
    accepted: Counter[str] = Counter()
    roles: dict[str, Counter[str]] = {kind: Counter() for kind in DRAFTING_PHASES.values()}
    before_total, retired_total, admitted_total, joined_total = 0, 0, 0, 0
    pool: int | None = None
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record.get("event") == "generation" and "pool_size" in record:
            pool = int(record["pool_size"])
        if record.get("event") != "phase":
            continue
        tokens = record.get("tokens") or {}
        phase = record.get("phase")
        if phase in ("evaluate", "reevaluate") and record.get("calls"):
            calls += int(record["calls"])
            subject += float(tokens.get("subjects", 0))
            judge += float(tokens.get("judge", 0))
        elif phase in DRAFTING_PHASES and "accepted" in record and "rejected" in record:
            kind = DRAFTING_PHASES[phase]
            admitted = len(record["accepted"])
            candidates[kind] += admitted + sum(record["rejected"].values())
            accepted[kind] += admitted
            roles[kind].update({k: float(v) for k, v in tokens.items()})
            if kind == "adapt" and pool and "pool_size" in record:
                retired = record.get("retired") or {}
                impossible = int(retired.get("impossible", 0))
                kept = pool - impossible - int(retired.get("cap", 0))
                before_total += pool
                retired_total += impossible
                admitted_total += admitted
                joined_total += max(0, int(record["pool_size"]) - kept)
    found = Measured(source=str(run_dir))
    if calls:
        found.subject_tokens = subject / calls
        found.judge_tokens_per_evaluation = judge / calls
    for kind, count in candidates.items():
        if count:
            found.drafting[kind] = Drafting(
                {r: roles[kind][r] / count for r in roles[kind]},
                accepted[kind] / count if accepted[kind] else None,
            )
    if before_total:
        found.retired_share = retired_total / before_total
    if admitted_total:
        found.joining_share = min(1.0, joined_total / admitted_total)
    return found


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


def render(ctx: Context, result: Plan, gpus: int, tokens_per_s: float | None) -> dict[str, Any]:
    """The plan as plain data: per generation and for the run, calls and tokens; hours; USD."""

    def table(loads: dict[str, Load]) -> dict[str, dict[str, int]]:
        return {
            r: {
                "calls": round(load.calls),
                "prompt_tokens": round(load.prompt_tokens),
                "completion_tokens": round(load.completion_tokens),
            }
            for r, load in loads.items()
        }

    data: dict[str, Any] = {
        "generations": ctx.generations,
        "active_pool": result.pool,
        "adaptations": result.adaptations,
        "per_generation": [
            {
                "generation": gen.generation,
                "active_pool": round(gen.pool, 1),
                "adapts": gen.adapts,
                "roles": table(gen.loads),
            }
            for gen in result.generations
        ],
        "run": table(result.total),
        "dollars": {r: round(v, 2) for r, v in result.dollars(ctx).items()},
        "notes": result.notes,
    }
    if tokens_per_s:
        data["gpus"] = gpus
        data["gpu_tokens_per_s"] = tokens_per_s
        hours = result.hours(gpus, tokens_per_s, ctx)
        data["hours"], data["minutes"] = round(hours, 3), round(hours * 60, 2)
    return data


def text(data: dict[str, Any]) -> str:
    """The rendered plan as short tables for the terminal: generations, then the run."""
    lines = [
        f"plan: {data['generations']} generations, pool about {data['active_pool']} tasks "
        f"after growth, {data['adaptations']} task adaptations",
        f"{'generation':>10}{'pool':>7}{'subject calls':>15}{'reply tok':>11}"
        f"{'judge tok':>11}{'scientist tok':>15}{'curator tok':>13}",
    ]
    for gen in data["per_generation"]:
        roles = gen["roles"]

        def both(role: str, roles: dict[str, dict[str, int]] = roles) -> int:
            return roles[role]["prompt_tokens"] + roles[role]["completion_tokens"]

        mark = " (adapts)" if gen["adapts"] else ""
        lines.append(
            f"{gen['generation']:>10}{gen['active_pool']:>7}"
            f"{roles['subjects']['calls']:>15,}{roles['subjects']['completion_tokens']:>11,}"
            f"{both('judge'):>11,}{both('scientist'):>15,}{both('curator'):>13,}{mark}"
        )
    lines.append(f"{'run':>10}{'role':>12}{'calls':>12}{'prompt tok':>14}{'reply tok':>14}")
    for role, row in data["run"].items():
        lines.append(
            f"{'':>10}{role:>12}{row['calls']:>12,}{row['prompt_tokens']:>14,}"
            f"{row['completion_tokens']:>14,}"
        )
    if "hours" in data:
        lines.append(
            f"time: {data['hours']} h ({data['minutes']} min) of generation on "
            f"{data['gpus']} GPU(s) at "
            f"{data['gpu_tokens_per_s']:,} tokens/s each (locally served roles included)"
        )
    for role, usd in data["dollars"].items():
        lines.append(f"dollars: {role} ${usd:,.2f}")
    if not data["dollars"]:
        lines.append("dollars: no role has a price (<role>_price)")
    lines += [f"note: {n}" for n in data["notes"]]
    return "\n".join(lines)
