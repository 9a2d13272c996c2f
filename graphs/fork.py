"""Fork a run: a new run that starts from an old one's state after generation K.

At the end of each generation (and of the initial phase, generation 0) the run writes
``snapshots/gen-NNN.json`` (``graphs/snapshots.py``): the pool's state and how many
lines the evaluation and metrics logs had. Forking RUN at K into NEW then:

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
from acdc.graphs.coevolution import builder
from acdc.graphs.snapshots import complete_lines
from acdc.rundir import RunDir
from acdc.taskpool import TaskPool
from acdc.vectorstore.tasks import TaskIndex


def _handled(run: RunDir) -> frozenset[str]:
    """Top-level files a fork cuts at K or writes anew; the others are copied as they are."""
    files = [run.pool_file, run.evaluations_file, run.metrics_file, run.costs_file]
    return frozenset(f.name for f in [*files, run.config_file, run.stop_file])


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
    src = RunDir(dataclasses.replace(ctx, run_id=source).run_dir, read_only=True)
    dst = RunDir(ctx.run_dir, read_only=True)
    if not src.config_file.is_file():
        raise ConfigError(f"fork: run {source!r} does not exist in {ctx.runs_dir}")
    checkpoints = dst.checkpoints_file.name
    if dst.root.exists() and any(not f.name.startswith(checkpoints) for f in dst.root.iterdir()):
        raise ConfigError(f"run_id: run {ctx.run_id!r} exists already; choose a new --run-id")
    path = src.snapshot_file(generation)
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
    run = RunDir(dst.root)
    run.record_config(ctx)
    run.log("fork", source=source, generation=generation)


def _copy_folder(src: RunDir, dst: RunDir, generation: int, snap: dict[str, Any]) -> None:
    """The run folder as of ``generation``: experts shared, the rest copied or cut."""
    dst.root.mkdir(parents=True, exist_ok=True)
    for folder, target in ((src.experts_dir, dst.experts_dir), (src.prompts_dir, dst.prompts_dir)):
        if folder.is_dir():
            shutil.copytree(folder, target, copy_function=_link_or_copy)
    pool_state = snap["pool"] or {"active": [], "retired": {}, "rejected": {}, "replaced": {}}
    atomic.write_json(dst.pool_file, pool_state)
    pool = TaskPool.open(dst.root)
    for task_id in pool.ever():
        _link_or_copy(str(src.task_file(task_id)), str(dst.task_file(task_id)))
    for source, target, count in (
        (src.evaluations_file, dst.evaluations_file, snap["evaluations"]),
        (src.metrics_file, dst.metrics_file, snap["metrics"]),
    ):
        atomic.write_text(target, "".join(complete_lines(source)[:count]))
    for k in range(generation + 1):
        for kept, target in (
            (src.archive_file(k), dst.archive_file(k)),
            (src.snapshot_file(k), dst.snapshot_file(k)),
        ):
            if kept.is_file():
                atomic.write_bytes(target, kept.read_bytes())
    rejected = sorted(src.rejected_dir.glob("*.json")) if src.rejected_dir.is_dir() else []
    for kept in rejected:
        if int(json.loads(kept.read_text()).get("generation", 0)) <= generation:
            atomic.write_bytes(dst.rejected_file(kept.stem), kept.read_bytes())
    costs = src.costs_file
    if costs.is_file():
        saved = json.loads(costs.read_text())
        by_generation = {
            g: v for g, v in saved.get("by_generation", {}).items() if int(g) <= generation
        }
        spent = sum(sum(v.values()) for v in by_generation.values())
        atomic.write_json(
            dst.costs_file, {**saved, "by_generation": by_generation, "spent_usd": spent}
        )
    handled = _handled(src)
    for kept in sorted(src.root.iterdir()):  # other run-level records (the judge's calibration)
        if (
            kept.is_file()
            and kept.name not in handled
            and not kept.name.startswith((src.checkpoints_file.name, "."))
        ):
            atomic.write_bytes(dst.root / kept.name, kept.read_bytes())
    with TaskIndex(dst.chroma_dir) as index:
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
