"""A generation's snapshot: what a fork after it needs, written when the generation ends.

The node that ends a generation (``ENDS_OF_GENERATIONS``) writes
``snapshots/gen-NNN.json``: the pool's state and how many complete lines the evaluation
and metrics logs had then. ``graphs/fork.py`` starts a new run from it.
"""

import json
from pathlib import Path

from acdc import atomic
from acdc.graphs.resources import RunResources

ENDS_OF_GENERATIONS = frozenset({"initial_archive", "report"})
"""Nodes that end a generation (``initial_archive`` ends generation 0)."""


def complete_lines(path: Path) -> list[str]:
    """Complete lines of a JSONL log (a torn last line is left out)."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    return data[: data.rfind(b"\n") + 1].decode().splitlines(keepends=True)


def save_snapshot(res: RunResources, generation: int) -> None:
    """Record what a fork at ``generation`` needs: the pool and the logs' lengths."""
    run = res.run
    pool = run.pool_file
    atomic.write_json(
        run.snapshot_file(generation),
        {
            "generation": generation,
            "pool": json.loads(pool.read_text()) if pool.is_file() else None,
            "evaluations": len(complete_lines(run.evaluations_file)),
            "metrics": len(complete_lines(run.metrics_file)),
        },
    )
