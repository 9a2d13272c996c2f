"""The per-generation summary: what a person reads after each generation, and why it stops.

Figures come from the run folder (archive, pool, evaluation store, metrics log), so the
summary of a resumed run is the same as if it had never stopped. The global figures (on
every task ever active, ``graphs/global_scores.py``) come first; the active pool's
(``coverage``, ``best_fitness``, ``pool_pass_rate``, ...) come beside them, labelled so,
because they rise when the pool shrinks. Cells never evaluated are masked throughout.
"""

import logging
import time
from collections import Counter
from typing import Any

from acdc.agents.calibration import load_calibration
from acdc.graphs import diversity, dynamics, global_scores
from acdc.graphs.resources import RunResources
from acdc.graphs.skill_matrix import skills
from acdc.graphs.watch import generation_usage, usage_lines
from acdc.population.archive import fitness
from acdc.population.coverage import coverage
from acdc.progress import duration
from acdc.report import write_report
from acdc.types import ExpertId

log = logging.getLogger(__name__)


def summarize(
    res: RunResources, archive: list[ExpertId], generation: int, tokens: int
) -> dict[str, Any]:
    """Summarize ``generation``, log it, print it and rewrite ``summary.md``.

    The global figures need the archive and the seeds evaluated on every task ever
    active first (``global_scores.complete``, which the report node runs).
    """
    _, solved, known = skills(res, archive)
    fit = fitness(solved, known)
    phases = [
        r
        for r in res.run.metrics.records()
        if r.get("event") == "phase" and r.get("generation") == generation
    ]
    role_tokens: Counter[str] = Counter()
    seconds: Counter[str] = Counter()
    accepted, rejected = 0, Counter[str]()
    for record in phases:
        role_tokens.update(record.get("tokens") or {})
        seconds[record["phase"]] += record.get("seconds", 0.0)
        accepted += len(record.get("accepted") or [])
        rejected.update(record.get("rejected") or {})
    best = max(range(len(archive)), key=lambda i: fit[i]) if archive else None
    summary: dict[str, Any] = {
        "generation": generation,
        "archive_size": len(archive),
        **global_scores.global_figures(res, archive),
        "best_expert": archive[best] if best is not None else None,
        "best_fitness": round(float(fit[best]), 4) if best is not None else 0.0,
        "pool_size": len(res.pool.active),
        "pool_target": res.ctx.pool_target,
        "coverage": round(coverage(solved, range(len(archive)), known), 4),
        "tasks_accepted": accepted,
        "tasks_rejected": dict(rejected),
        "tokens_by_role": dict(role_tokens),
        "seconds_by_phase": {k: round(v, 1) for k, v in seconds.items()},
        "tokens_total": tokens,
        **dynamics.dynamics(res, archive, generation),
        **diversity.archive_diversity(res, archive),
        **generation_usage(res, generation),
    }
    res.run.log("generation", **summary)
    text = summary_text(summary)
    print(text, flush=True)
    history = [r for r in res.run.metrics.records() if r.get("event") == "generation"]
    calibration = load_calibration(res.run.root)
    judge = f"{calibration.line()}\n\n" if calibration else ""
    res.run.write_summary(
        f"# acdc run {res.ctx.run_id}\n\n{judge}"
        + "\n\n".join(summary_text(h) for h in history)
        + "\n"
    )
    refresh_report(res)
    return summary


def refresh_report(res: RunResources) -> None:
    """Rewrite the HTML report; a plotting failure is logged, never stops the run."""
    started = time.perf_counter()
    try:
        path = write_report(res.run.root)
    except Exception as err:  # a report is a view of the run, not part of it
        log.warning("could not refresh the report: %s", err)
        return
    res.run.log("phase", phase="report", seconds=round(time.perf_counter() - started, 2))
    print(f"   report: {path} ({time.perf_counter() - started:.1f} s)", flush=True)


def summary_text(summary: dict[str, Any]) -> str:
    """The summary as a few readable lines."""
    rejected = ", ".join(f"{k} {v}" for k, v in summary["tasks_rejected"].items()) or "none"
    roles = ", ".join(f"{k} {v}" for k, v in summary["tokens_by_role"].items()) or "none"
    times = ", ".join(f"{k} {duration(v)}" for k, v in summary["seconds_by_phase"].items())
    overall = global_scores.global_line(summary)
    target = f" (target {summary['pool_target']})" if "pool_target" in summary else ""
    active = (
        "empty"
        if summary["pool_size"] == 0
        else f"best fitness {summary['best_fitness']:.3f} ({summary['best_expert']}), "
        f"coverage {summary['coverage']:.0%}"
    )
    return (
        f"== generation {summary['generation']}: archive {summary['archive_size']}"
        + (f"; {overall}" if overall else "")
        + f"\n   active pool {summary['pool_size']} tasks{target}: {active}\n"
        f"   tasks accepted {summary['tasks_accepted']}, rejected: {rejected}\n"
        f"   tokens: {roles} (run total {summary['tokens_total']})\n"
        f"   time: {times}"
        + dynamics.dynamics_lines(summary)
        + diversity.diversity_line(summary)
        + usage_lines(summary)
    )


def stop_reason(res: RunResources, generation: int, tokens: int) -> str:
    """Why the run should end now, or "" to go on."""
    if res.run.stop_file.exists():
        return f"stop requested ({res.run.stop_file} exists)"
    if generation >= res.ctx.generations:
        return f"generation budget reached ({res.ctx.generations})"
    if res.ctx.token_budget and tokens >= res.ctx.token_budget:
        return f"token budget reached ({tokens} >= {res.ctx.token_budget})"
    return ""
