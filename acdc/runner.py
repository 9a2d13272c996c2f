"""``acdc run``: check the settings, then drive the coevolution graph to its end.

The CLI compiles the graph with a SQLite checkpointer in the run folder (or Postgres),
uses the run id as the thread id, and answers human-review interrupts on the terminal.
A first Ctrl-C (or SIGTERM) asks for a graceful stop after the current generation; a
second one aborts, and ``acdc run --resume RUN_ID`` continues from the last step.
The cost budget ends a run inside a phase (``BudgetSpentError``); ``--resume`` with a
larger ``--cost-budget-usd`` redoes that phase's missing work.
"""

import contextlib
import json
import signal
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command

from acdc import safe_files
from acdc.context import ConfigError, Context
from acdc.costs import BudgetSpentError
from acdc.rundir import RunDir

RECURSION_LIMIT = 1_000_000
"""Steps per invocation; the run's own budgets end it long before."""


def preflight(ctx: Context, reach: bool = True) -> None:
    """Refuse a bad configuration before anything starts, naming the field at fault.

    ``reach=False`` skips the checks that the configured servers answer (``acdc plan``
    validates a config for another machine).
    """
    from acdc.agents.curator import PROMPTS as CURATOR
    from acdc.agents.judge import PROMPTS as JUDGE
    from acdc.agents.scientist import PROMPTS as SCIENTIST
    from acdc.agents.subjects import PROMPTS as SUBJECTS
    from acdc.population.operators import registry
    from acdc.prompts.loader import load_prompt

    operators: tuple[tuple[str, registry.OperatorKind], ...] = (
        (ctx.crossover, "crossover"),
        (ctx.mutation, "mutation"),
    )
    for name, kind in operators:
        if name not in registry.names(kind):
            valid = ", ".join(registry.names(kind))
            raise ConfigError(f"{kind}: unknown operator {name!r} (valid: {valid})")
    if ctx.base_model and not Path(ctx.base_model).expanduser().exists():
        raise ConfigError(f"base_model: {ctx.base_model} does not exist")
    for field in ("seed_adapters", "seed_finetunes", "benchmark_files"):
        for path in getattr(ctx, field):
            if not Path(path).expanduser().exists():
                raise ConfigError(f"{field}: {path} does not exist")
    if ctx.prompts_dir and not Path(ctx.prompts_dir).is_dir():
        raise ConfigError(f"prompts_dir: {ctx.prompts_dir} is not a folder")
    for prompts in (SCIENTIST, JUDGE, CURATOR, SUBJECTS):
        for name, variables in prompts.items():
            load_prompt(name, variables, ctx.prompts_dir)
    for field in ("server_url", "scientist_base_url", "judge_base_url", "curator_base_url"):
        url = getattr(ctx, field)
        if reach and url and not _reachable(url):
            raise ConfigError(f"{field}: nothing answers at {url}")
    for url in ctx.server_urls:
        if reach and not _reachable(url):
            raise ConfigError(f"server_urls: nothing answers at {url}")
    if reach and ctx.embedding_base_url and not _reachable(ctx.embedding_base_url):
        raise ConfigError(f"embedding_base_url: nothing answers at {ctx.embedding_base_url}")
    if (
        ctx.archive_size
        > ctx.initial_population
        + 1
        + len(ctx.seed_adapters)
        + len(ctx.seed_finetunes)
        + ctx.children_per_generation * ctx.generations
    ):
        raise ConfigError("archive_size: larger than every expert the run can ever breed")


def _reachable(url: str) -> bool:
    try:
        httpx.get(url.rstrip("/") + "/models", timeout=5.0)
    except httpx.HTTPError:
        return False
    return True


@contextlib.contextmanager
def checkpointer(ctx: Context) -> Iterator[BaseCheckpointSaver[Any]]:
    """SQLite in the run folder, or Postgres when ``checkpointer_url`` is set."""
    if ctx.checkpointer_url:
        try:
            from langgraph.checkpoint.postgres import PostgresSaver
        except ImportError as err:
            raise ConfigError(
                "checkpointer_url: install langgraph-checkpoint-postgres to use Postgres"
            ) from err
        with PostgresSaver.from_conn_string(ctx.checkpointer_url) as saver:
            saver.setup()
            yield saver
        return
    from langgraph.checkpoint.sqlite import SqliteSaver

    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    path = RunDir(ctx.run_dir, read_only=True).checkpoints_file  # a fork's source may be live
    connection = sqlite3.connect(path, check_same_thread=False)
    try:
        yield SqliteSaver(connection)
    finally:
        connection.close()


def run(ctx: Context, *, resume: bool) -> str:
    """Run (or resume) the loop of ``ctx``; returns why it stopped."""
    from acdc.graphs.coevolution import builder
    from acdc.graphs.resources import close_all

    preflight(ctx)
    started_before = RunDir(ctx.run_dir, read_only=True).config_file.exists()
    if started_before and not resume:
        raise ConfigError(
            f"run_id: run {ctx.run_id!r} already exists in {ctx.runs_dir}; "
            f"continue it with --resume {ctx.run_id} or choose another --run-id"
        )
    folder = RunDir(ctx.run_dir)
    folder.stop_file.unlink(missing_ok=True)
    config: RunnableConfig = {
        "configurable": {"thread_id": ctx.run_id},
        "recursion_limit": RECURSION_LIMIT,
    }
    restore = _graceful_stop(folder.stop_file)
    reason, aborted = "", False
    try:
        with checkpointer(ctx) as saver:
            graph = builder.compile(checkpointer=saver, name="coevolution")
            state = graph.get_state(config)
            payload: Any = {}
            if state.values:
                payload = None
                if not state.next and not state.interrupts:
                    # Finished before: re-open the loop at the report's decision.
                    graph.update_state(config, {"stop_reason": ""}, as_node="report")
            while True:
                interrupts: list[Any] = []
                for chunk in graph.stream(payload, config, context=ctx, stream_mode="updates"):
                    interrupts += chunk.get("__interrupt__", ())
                if not interrupts:
                    break
                payload = Command(resume=ask_review(interrupts[0].value, ctx.run_dir))
            reason = str(graph.get_state(config).values.get("stop_reason", ""))
    except BudgetSpentError as spent:  # drained and checkpointed before the node it stopped
        reason = str(spent)
    except KeyboardInterrupt:  # second signal: the last completed step is checkpointed
        aborted = True
    finally:
        restore()
        close_all()
    if aborted:
        print(f"run {ctx.run_id} aborted; continue it with --resume {ctx.run_id}", flush=True)
        raise SystemExit(130)
    print(f"run {ctx.run_id} stopped: {reason}; folder {ctx.run_dir}", flush=True)
    return reason


def _graceful_stop(stop_file: Path) -> Any:
    """First signal: create the STOP file; second: abort. Returns a restore function."""
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: object) -> None:
        if stop_file.exists():
            raise KeyboardInterrupt
        stop_file.touch()
        print(
            "\nstopping after the current generation (again to abort; resume later with --resume)",
            file=sys.stderr,
            flush=True,
        )

    for sig in previous:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


def ask_review(request: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Ask on the terminal about each candidate task: approve, reject or edit."""
    if not sys.stdin.isatty():
        raise RuntimeError(
            "review_tasks is on but stdin is not a terminal: review the tasks in LangGraph "
            "Studio, or run acdc run interactively"
        )
    decision: dict[str, Any] = {"approve": [], "reject": [], "edit": {}}
    for task in request.get("candidates", []):
        print(json.dumps(task, indent=2))
        while True:
            choice = input(f"task {task['id']}: [a]pprove, [r]eject, [e]dit? ").strip().lower()
            if choice in {"a", "r", "e"}:
                break
        if choice == "a":
            decision["approve"].append(task["id"])
        elif choice == "r":
            decision["reject"].append(task["id"])
        else:
            path = RunDir(run_dir, read_only=True).review_edit_file(task["id"])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(task, indent=2))
            while True:
                input(f"edit {path}, save it, then press Enter ")
                try:
                    edited = safe_files.load_json(path, what="edited task")
                except safe_files.InputFileError as err:
                    print(f"{err}; fix it and try again")
                    continue
                if isinstance(edited, dict):
                    break
                print(f"{path}: a task is a JSON object; fix it and try again")
            decision["edit"][task["id"]] = edited
    return decision
