"""Whether the two populations coevolve: per-generation figures measured on the same tasks.

A run coevolves when the pool stays hard enough to separate experts (the archive's pass
rate on it stays inside the band the adaptation thresholds aim for, instead of drifting
to 0 or 1), variants keep getting in, and the archive learns what the seed cannot
(discoveries). Every figure here is measured on the active pool of the generation, with
the archive and the seeds scored on the same tasks and cells never evaluated masked
(``population/scoreboard.py``); ``graphs/global_scores.py`` gives the same figures on
every task ever active, which a shrinking pool cannot flatter.
"""

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from acdc.graphs.resources import RunResources
from acdc.graphs.skill_matrix import skills
from acdc.population.scoreboard import scoreboard
from acdc.types import ExpertId


def dynamics(res: RunResources, archive: Sequence[ExpertId], generation: int) -> dict[str, Any]:
    """The coevolution figures of ``generation`` (see the module docstring)."""
    seeds = list(res.population.seed_ids)
    _, solved, known = skills(res, [*archive, *seeds])
    members = range(len(archive))
    board = scoreboard(solved, known, members, range(len(archive), len(archive) + len(seeds)))
    return {
        "pool_pass_rate": _round(board.pass_rate),
        "pool_pass_rate_std": _round(board.pass_rate_std),
        "archive_best_fitness": _round(board.best_fitness),
        "archive_mean_fitness": _round(board.mean_fitness),
        "seed_fitness": _round(board.seed_fitness),
        "discoveries": board.discoveries,
        "pool_novelty": _round(pool_novelty(res)),
        **adaptation_counts(res, generation),
    }


def adaptation_counts(res: RunResources, generation: int) -> dict[str, Any]:
    """Candidates proposed / admitted / refused (by stage) per kind, and tasks retired."""
    kinds: dict[str, dict[str, Any]] = {}
    retired: Counter[str] = Counter()
    for record in res.run.metrics.records():
        if record.get("event") != "phase" or record.get("generation") != generation:
            continue
        retired.update(record.get("retired") or {})
        for kind, counts in (record.get("by_kind") or {}).items():
            into = kinds.setdefault(kind, {"proposed": 0, "admitted": 0, "refused": Counter()})
            into["proposed"] += counts.get("proposed", 0)
            into["admitted"] += counts.get("admitted", 0)
            into["refused"].update(counts.get("refused") or {})
    return {
        "adaptation": {k: {**v, "refused": dict(v["refused"])} for k, v in kinds.items()},
        "retired": dict(retired),
    }


def pool_novelty(res: RunResources) -> float:
    """Mean cosine distance from each active task to its nearest other active task."""
    vectors = res.index.embeddings(res.pool.active)
    if len(vectors) < 2:
        return 0.0
    unit = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    return float((1.0 - similarity.max(axis=1)).mean())


def dynamics_lines(summary: dict[str, Any]) -> str:
    """The dynamics as two printed lines of the generation summary ("" for older runs)."""
    if "pool_pass_rate" not in summary:
        return ""
    kinds = summary.get("adaptation") or {}
    adapted = "; ".join(
        f"{kind} {c['admitted']}/{c['proposed']}"
        + (f" (refused {_counts(c['refused'])})" if c["refused"] else "")
        for kind, c in sorted(kinds.items())
    )
    return (
        f"\n   active pool: pass rate {summary['pool_pass_rate']:.2f} +- "
        f"{summary['pool_pass_rate_std']:.2f}, novelty {summary['pool_novelty']:.2f}; "
        f"fitness best {summary['archive_best_fitness']:.2f} / mean "
        f"{summary['archive_mean_fitness']:.2f} vs seed {summary['seed_fitness']:.2f}; "
        f"discoveries {summary['discoveries']}"
        f"\n   admitted/proposed: {adapted or 'none'}; retired: "
        f"{_counts(summary.get('retired') or {}) or 'none'}"
    )


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def _round(value: float) -> float:
    return round(float(value), 4)
