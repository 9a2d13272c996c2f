"""What every node of the run does around its phase: charge costs, watch the server, stop.

``watched(phase)`` wraps a node of the coevolution graph: role calls made inside it are
charged to the phase's generation, the population server's utilization is sampled
while it runs (one ``utilization`` record in ``metrics.jsonl``), and when the cost
budget refused a call the node raises ``BudgetSpentError`` once its calls in flight have
finished. The exception leaves the checkpoint before the node, so ``acdc run
--resume`` with a larger ``cost_budget_usd`` redoes only the node's missing work
(evaluations are keyed, admissions one by one). The report node never raises: it ends
the run with the reason between generations instead.
"""

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

from langgraph.runtime import Runtime

from acdc.context import Context
from acdc.costs import BudgetSpentError
from acdc.graphs.resources import RunResources, resources_for
from acdc.graphs.snapshots import ENDS_OF_GENERATIONS, save_snapshot
from acdc.graphs.state import RunState
from acdc.population.utilization import UtilizationSampler

Node = TypeVar("Node", bound=Callable[..., dict[str, Any]])

BEFORE_GENERATIONS = frozenset({"bootstrap", "seed_tasks", "initial_archive"})
"""Phases charged to generation 0 (the rest to the generation in progress)."""


def phase_generation(phase: str, state: RunState) -> int:
    """The generation a phase works for."""
    return 0 if phase in BEFORE_GENERATIONS else state.get("generation", 0) + 1


def watched(phase: str) -> Callable[[Node], Node]:
    """Wrap a node: costs charged to its generation, utilization sampled, budget enforced."""

    def wrap(node: Node) -> Node:
        @functools.wraps(node)
        def run(state: RunState, runtime: Runtime[Context]) -> dict[str, Any]:
            res = resources_for(runtime.context)
            res.ledger.set_budget(runtime.context.cost_budget_usd)
            generation = phase_generation(phase, state)
            if phase != "report":
                stop_if_spent(res)
            res.ledger.generation = generation
            with watch(res, phase, generation):
                update = node(state, runtime)
            if phase in ENDS_OF_GENERATIONS:
                save_snapshot(res, generation)  # what a fork after this generation starts from
            if phase != "report":
                stop_if_spent(res)
            return update

        return cast(Node, run)

    return wrap


SAMPLE_INTERVAL = 0.5
"""Seconds between readings of the server's metrics."""


@contextlib.contextmanager
def watch(res: RunResources, phase: str, generation: int) -> Iterator[None]:
    """Sample the population server while the phase runs; log and print its utilization."""
    sampler = UtilizationSampler(res.server.urls, SAMPLE_INTERVAL).start()
    try:
        yield
    finally:
        used = sampler.stop()
        if used is not None and used.seconds >= 1.0:
            res.run.log("utilization", phase=phase, generation=generation, **used.as_dict())
            print(f"[gen {generation} {phase}] server: {used.line()}", flush=True)


def stop_if_spent(res: RunResources) -> None:
    """Raise ``BudgetSpentError`` (logged as the run's stop) when the budget is spent."""
    if res.ledger.exhausted:
        reason = res.ledger.reason()
        res.run.log("stop", reason=reason, cost_usd=round(res.ledger.spent, 6))
        raise BudgetSpentError(reason)


def budget_stop_reason(res: RunResources) -> str:
    """The report's reason to end the run for money, or ""."""
    return res.ledger.reason() if res.ledger.exhausted else ""


def generation_usage(res: RunResources, generation: int) -> dict[str, Any]:
    """Cost by role of ``generation``, the run's total, and the server's use per phase."""
    used = {
        r["phase"]: {"busy_share": r["busy_share"], "tokens_per_s": r["tokens_per_s"]}
        for r in res.run.metrics.records()
        if r.get("event") == "utilization" and r.get("generation") == generation
    }
    return {
        "cost_usd_by_role": res.ledger.by_role(generation),
        "cost_usd_total": round(res.ledger.spent, 6),
        "utilization_by_phase": used,
    }


def usage_lines(summary: dict[str, Any]) -> str:
    """The summary's cost and utilization lines ("" when there is nothing to say)."""
    lines = []
    if summary.get("cost_usd_total"):
        roles = ", ".join(f"{k} ${v:.4f}" for k, v in summary["cost_usd_by_role"].items())
        lines.append(f"   cost: {roles or 'none'} (run total ${summary['cost_usd_total']:.4f})")
    if summary.get("utilization_by_phase"):
        phases = ", ".join(
            f"{phase} busy {u['busy_share']:.0%} {u['tokens_per_s']:.0f} tok/s"
            for phase, u in summary["utilization_by_phase"].items()
        )
        lines.append(f"   server: {phases}")
    return "".join("\n" + line for line in lines)
