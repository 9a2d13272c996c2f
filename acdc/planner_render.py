"""The output of ``acdc plan``: the plan as plain data (``--json``) and as terminal tables."""

from typing import Any

from acdc.context import Context
from acdc.planner import Load, Plan


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
