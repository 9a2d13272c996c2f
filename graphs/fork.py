"""Fork a run: a new run that starts from an old one's state after generation K.

At the end of each generation (and of the initial phase, generation 0) the run writes
``snapshots/gen-NNN.json``: the pool's state and how many lines the evaluation and
metrics logs had. Forking RUN at K into NEW then:

- copies the LangGraph state of RUN's checkpoint after generation K (from the
  checkpoint history) into NEW's thread, as if NEW had just finished generation K;
- shares the experts (hard links: an expert folder is never changed once written) and
  copies the task bodies the pool held at K, the pool's state, the evaluation and
  metrics logs cut at K, the archives up to K and the costs charged up to K;
- rebuilds NEW's task index (ChromaDB) from those tasks, in admission order.

Nothing is recomputed: with the same settings NEW's next generation is RUN's, and with
other settings (another judge, threshold or operator) it diverges from the same point.
"""

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import StateSnapshot

from acdc import atomic
from acdc.context import ConfigError, Context
from acdc.graphs.resources import RunResources
from acdc.runstore import RunDir
from acdc.taskpool import TaskPool
from acdc.vectorstore.tasks import TaskIndex

SNAPSHOTS = "snapshots"
ENDS_OF_GENERATIONS = frozenset({"initial_archive", "report"})
"""Nodes that end a generation (``initial_archive`` ends generation 0)."""


HANDLED = frozenset(
    {"pool.json", "evaluations.jsonl", "metrics.jsonl", "costs.json", "config.yaml", "STOP"}
)
"""Top-level files a fork cuts at K or writes anew; the others are copied as they are."""


def snapshot_path(run_dir: Path, generation: int) -> Path:
    """Where the run keeps its snapshot after ``generation``."""
    return run_dir / SNAPSHOTS / f"gen-{generation:03d}.json"


def _lines(path: Path) -> list[str]:
    """Complete lines of a JSONL log (a torn last line is left out)."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    return data[: data.rfind(b"\n") + 1].decode().splitlines(keepends=True)


def save_snapshot(res: RunResources, generation: int) -> None:
    """Record what a fork at ``generation`` needs: the pool and the logs' lengths."""
    root = res.run.root
    pool = root / "pool.json"
    atomic.write_json(
        snapshot_path(root, generation),
        {
            "generation": generation,
            "pool": json.loads(pool.read_text()) if pool.is_file() else None,
            "evaluations": len(_lines(root / "evaluations.jsonl")),
            "metrics": len(_lines(root / "metrics.jsonl")),
        },
    )


def state_after(graph: Any, config: dict[str, Any], generation: int) -> StateSnapshot:
    """The newest checkpoint of ``config``'s thread right after ``generation`` ended.

    Raises:
        ConfigError: The thread has no such checkpoint.
    """
    for snapshot in graph.get_state_history(config):
        values = snapshot.values
        if values.get("generation") != generation or "archive" not in values:
            continue
        ended = snapshot.next == ("breed",) or (
            not snapshot.next and values.get("stop_reason") and generation > 0
        )
        if ended:
            return snapshot  # type: ignore[no-any-return]
    raise ConfigError(f"at_generation: run has no checkpoint after generation {generation}")


def fork_run(
    ctx: Context,
    source: str,
    generation: int,
    source_saver: BaseCheckpointSaver[Any],
    saver: BaseCheckpointSaver[Any],
) -> None:
    """Make ``ctx``'s run a fork of run ``source`` after ``generation``.

    Raises:
        ConfigError: The source run or its snapshot is missing, or ``ctx``'s run exists.
    """
    from acdc.graphs.coevolution import builder

    src = dataclasses.replace(ctx, run_id=source).run_dir
    dst = ctx.run_dir
    if not (src / "config.yaml").is_file():
        raise ConfigError(f"fork: run {source!r} does not exist in {ctx.runs_dir}")
    if dst.exists() and any(not f.name.startswith("checkpoints.sqlite") for f in dst.iterdir()):
        raise ConfigError(f"run_id: run {ctx.run_id!r} exists already; choose a new --run-id")
    path = snapshot_path(src, generation)
    if not path.is_file():
        raise ConfigError(
            f"at_generation: run {source!r} kept no snapshot after generation {generation} "
            f"(snapshots are written from the end of generation 0 on)"
        )
    if ctx.chroma_host:
        raise ConfigError("chroma_host: a fork rebuilds an embedded task index only")
    snap = json.loads(path.read_text())
    state = state_after(
        builder.compile(checkpointer=source_saver),
        {"configurable": {"thread_id": source}},
        generation,
    )
    _copy_folder(src, dst, generation, snap)
    values = {**state.values, "stop_reason": ""}
    graph = builder.compile(checkpointer=saver)
    as_node = "initial_archive" if generation == 0 else "report"
    graph.update_state({"configurable": {"thread_id": ctx.run_id}}, values, as_node=as_node)
    run = RunDir(dst)
    run.record_config(ctx)
    run.log("fork", source=source, generation=generation)


def _copy_folder(src: Path, dst: Path, generation: int, snap: dict[str, Any]) -> None:
    """The run folder as of ``generation``: experts shared, the rest copied or cut."""
    dst.mkdir(parents=True, exist_ok=True)
    for folder in ("experts", "prompts"):
        if (src / folder).is_dir():
            shutil.copytree(src / folder, dst / folder, copy_function=_link_or_copy)
    pool_state = snap["pool"] or {"active": [], "retired": {}, "rejected": {}, "replaced": {}}
    atomic.write_json(dst / "pool.json", pool_state)
    pool = TaskPool.open(dst)
    for task_id in pool.ever():
        _link_or_copy(
            str(src / "tasks" / f"{task_id}.json"), str(pool.tasks_dir / f"{task_id}.json")
        )
    for name, count in (
        ("evaluations.jsonl", snap["evaluations"]),
        ("metrics.jsonl", snap["metrics"]),
    ):
        atomic.write_text(dst / name, "".join(_lines(src / name)[:count]))
    for k in range(generation + 1):
        for folder in ("archive", SNAPSHOTS):
            kept = src / folder / f"gen-{k:03d}.json"
            if kept.is_file():
                atomic.write_bytes(dst / folder / kept.name, kept.read_bytes())
    for kept in sorted((src / "rejected").glob("*.json")) if (src / "rejected").is_dir() else []:
        if int(json.loads(kept.read_text()).get("generation", 0)) <= generation:
            atomic.write_bytes(dst / "rejected" / kept.name, kept.read_bytes())
    costs = src / "costs.json"
    if costs.is_file():
        saved = json.loads(costs.read_text())
        by_generation = {
            g: v for g, v in saved.get("by_generation", {}).items() if int(g) <= generation
        }
        spent = sum(sum(v.values()) for v in by_generation.values())
        atomic.write_json(
            dst / "costs.json", {**saved, "by_generation": by_generation, "spent_usd": spent}
        )
    for kept in sorted(src.iterdir()):  # other run-level records (e.g. the judge's calibration)
        if (
            kept.is_file()
            and kept.name not in HANDLED
            and not kept.name.startswith(("checkpoints", "."))
        ):
            atomic.write_bytes(dst / kept.name, kept.read_bytes())
    with TaskIndex(dst / "chroma") as index:
        for task in pool.active_tasks():
            index.upsert(task, status="active")
        for task_id in pool.retired:
            if task_id not in pool.active:
                index.upsert(pool.get(task_id), status="retired")


def _link_or_copy(source: str, target: str) -> None:
    """Hard-link ``source`` at ``target`` (a copy across file systems)."""
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
