"""``acdc plan``: what a run will cost before anything starts (calls, tokens, hours, USD).

The loop's sizes fix how many calls each role makes: every expert answers every scored
instance of every active task once (evaluation records are keyed), children are bred
and evaluated each generation, the pool grows by scientist micro-batches through the
judge's review and the curator, and every ``adapt_every`` generations ``adapt_parents``
candidates are written and the survivors answer the admitted ones. Tokens per call come
from a previous run's ``metrics.jsonl`` when one is given (measured means), else from
assumptions stated in :data:`ASSUMED` (a share of each role's ``max_tokens``). Time is
generated tokens over the given throughput; dollars use the roles' ``<role>_price``.

It is an estimate of the expected path: rejections, retries and a pool that never
reaches its size move the real figures; the output says which inputs were measured.
"""

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acdc.context import Context

ROLES = ("subjects", "judge", "scientist", "curator")

ASSUMED: dict[str, float] = {
    "reply_share": 0.5,  # a reply uses half its max_tokens on average
    "subject_prompt": 150.0,  # tokens of the answer prompt and one instance
    "judge_prompt": 900.0,  # rubric, instance, reference and the fenced answer
    "scientist_prompt": 1200.0,  # instructions, similar tasks, the parent task
    "curator_prompt": 1000.0,  # the candidate and its nearest accepted tasks
    "curator_checks": 0.5,  # candidates near enough to an accepted task to be checked
    "acceptance": 0.5,  # candidates admitted per candidate written
    "rubric_share": 0.1,  # evaluations graded by the judge (1 of the 10 seed tasks)
    "instances": 4.5,  # scored instances per task when all are scored (seed mean)
    "seed_tasks": 10.0,  # hand-written tasks the pool starts from
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
class Measured:
    """Means taken from a previous run's metrics (None: not measured, assumed)."""

    subject_tokens: float | None = None
    judge_tokens_per_evaluation: float | None = None
    role_tokens_per_candidate: dict[str, float] = field(default_factory=dict)
    acceptance: float | None = None
    source: str = ""


def measure(run_dir: Path) -> Measured:
    """Mean tokens per call of a finished or stopped run, from its ``metrics.jsonl``.

    Subject tokens per evaluation and judge tokens per evaluation come from the evaluate
    phases; scientist, judge and curator tokens per task candidate and the acceptance
    rate from the task phases (those logging ``accepted`` and ``rejected``).
    """
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: give a run folder with metrics")
    calls, subject, judge, candidates, accepted = 0, 0.0, 0.0, 0, 0
    roles: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record.get("event") != "phase":
            continue
        tokens = record.get("tokens") or {}
        if record.get("phase") in ("evaluate", "reevaluate") and record.get("calls"):
            calls += int(record["calls"])
            subject += float(tokens.get("subjects", 0))
            judge += float(tokens.get("judge", 0))
        elif "accepted" in record and "rejected" in record:
            n = len(record["accepted"]) + sum(record["rejected"].values())
            candidates += n
            accepted += len(record["accepted"])
            roles.update({k: float(v) for k, v in tokens.items()})
    found = Measured(source=str(run_dir))
    if calls:
        found.subject_tokens = subject / calls
        found.judge_tokens_per_evaluation = judge / calls
    if candidates:
        found.role_tokens_per_candidate = {r: roles[r] / candidates for r in roles}
        found.acceptance = accepted / candidates if accepted else None
    return found


@dataclass
class Plan:
    """Per-role loads of the first generation, a later one, one adaptation and the run."""

    first: dict[str, Load]
    later: dict[str, Load]
    adaptation: dict[str, Load]
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
    """Estimate calls and tokens of ``ctx``'s run (see the module docstring)."""
    m = measured or Measured()
    notes: list[str] = []
    a = ASSUMED
    share = a["reply_share"]
    acceptance = m.acceptance or a["acceptance"]
    instances = ctx.instances_per_task or a["instances"]
    seeds = 1 + len(ctx.seed_adapters) + len(ctx.seed_finetunes)

    # Pool growth before generation 1, bounded by task_rounds micro-batches.
    wanted = max(0.0, ctx.initial_pool - a["seed_tasks"])
    growth = min(math.ceil(wanted / acceptance), ctx.task_batch * ctx.task_rounds)
    pool = int(min(ctx.pool_max, a["seed_tasks"] + growth * acceptance))
    if pool < ctx.initial_pool:
        cap = (
            f"pool_max {ctx.pool_max}"
            if pool == ctx.pool_max
            else f"task_batch x task_rounds = {ctx.task_batch * ctx.task_rounds} candidates"
        )
        notes.append(f"the pool likely reaches {pool} of initial_pool {ctx.initial_pool} ({cap})")
    adapted = ctx.adapt_parents * acceptance
    # Evaluation records count a subject's reply tokens only; role calls count both.
    subject_split = (a["subject_prompt"], m.subject_tokens or share * ctx.subject_max_tokens)

    def evaluations(count: float) -> dict[str, Load]:
        loads = {r: Load() for r in ROLES}
        loads["subjects"].add(count, *subject_split)
        judged = count * a["rubric_share"]
        prompt, reply = a["judge_prompt"], share * ctx.judge_max_tokens
        if m.judge_tokens_per_evaluation is not None and judged:
            prompt, reply = _split(prompt, reply, m.judge_tokens_per_evaluation / a["rubric_share"])
        loads["judge"].add(judged, prompt, reply)
        return loads

    def candidates(count: float) -> dict[str, Load]:
        loads = {r: Load() for r in ROLES}
        calls = {
            "scientist": 1 + ctx.reflection_rounds,
            "judge": 1.0 if ctx.validate_tasks else 0.0,
            "curator": a["curator_checks"],
        }
        for role, per_candidate in calls.items():
            prompt = a[f"{role}_prompt"]
            reply = share * getattr(ctx, f"{role}_max_tokens")
            if role in m.role_tokens_per_candidate and per_candidate:
                per_call = m.role_tokens_per_candidate[role] / per_candidate
                prompt, reply = _split(prompt, reply, per_call)
            loads[role].add(count * per_candidate, prompt, reply)
        return loads

    calibration = {r: Load() for r in ROLES}
    calibration["judge"].add(
        _calibration_pairs(ctx), a["judge_prompt"], share * ctx.judge_max_tokens
    )
    sanity = a["sanity_prompts"]
    first_experts = seeds + ctx.initial_population + ctx.children_per_generation
    first = _merge(
        evaluations(first_experts * pool * instances),
        candidates(growth),
        _sanity((ctx.initial_population + ctx.children_per_generation) * sanity, ctx),
        calibration,
    )
    later = _merge(
        evaluations(ctx.children_per_generation * pool * instances),
        _sanity(ctx.children_per_generation * sanity, ctx),
    )
    adaptation = _merge(
        candidates(ctx.adapt_parents),
        evaluations((ctx.archive_size + seeds) * adapted * instances),
    )
    adaptations = ctx.generations // ctx.adapt_every
    total = {
        r: first[r]
        .plus(later[r].scaled(ctx.generations - 1))
        .plus(adaptation[r].scaled(adaptations))
        for r in ROLES
    }
    if measured is None:
        notes.append("tokens per call assumed (no --from-run): see acdc/planner.py ASSUMED")
    else:
        notes.append(f"tokens per call measured in {m.source}")
    return Plan(first, later, adaptation, total, pool, adaptations, notes)


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


def _sanity(calls: float, ctx: Context) -> dict[str, Load]:
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
    """The plan as plain data: per role and stretch, calls and tokens; hours; dollars."""

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
        "first_generation": table(result.first),
        "later_generation": table(result.later),
        "adaptation": table(result.adaptation),
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
    """The rendered plan as a short table for the terminal."""
    lines = [
        f"plan: {data['generations']} generations, active pool about {data['active_pool']} "
        f"tasks, {data['adaptations']} task adaptations",
        f"{'':18}{'role':>10}{'calls':>12}{'prompt tok':>14}{'reply tok':>14}",
    ]
    for stretch in ("first_generation", "later_generation", "adaptation", "run"):
        for role, row in data[stretch].items():
            lines.append(
                f"{stretch:18}{role:>10}{row['calls']:>12,}{row['prompt_tokens']:>14,}"
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
