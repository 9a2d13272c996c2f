"""The long-lived things a run's nodes share: population, server, vector store, pool.

Nodes find these through ``resources_for(ctx)``: one ``RunResources`` per run folder and
process (``registry.py``), opened on first use and closed at exit.
"""

import asyncio
import contextlib
import logging
import threading
from collections import Counter
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from acdc.agents.calibration import rubric_off
from acdc.agents.curator import Curator
from acdc.agents.judge import Judge
from acdc.agents.scientist import Scientist
from acdc.agents.structured import caller_for
from acdc.agents.subjects import Subjects
from acdc.agents.task_pipeline import TaskPipeline
from acdc.context import Context
from acdc.costs import CostLedger
from acdc.graphs.registry import RunRegistry
from acdc.models import subject_concurrency
from acdc.population.bootstrap import Population, bootstrap, make_breeder
from acdc.population.breeding import Breeder
from acdc.population.client import PopulationClient, open_client
from acdc.population.server import PopulationServer
from acdc.rundir import RunDir
from acdc.taskpool import TaskPool
from acdc.vectorstore.contamination import BenchmarkIndex
from acdc.vectorstore.tasks import TaskIndex

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class RunResources:
    """Everything one run needs besides its graph state."""

    ctx: Context
    run: RunDir
    population: Population
    server: PopulationServer
    index: TaskIndex
    benchmarks: BenchmarkIndex | None
    pool: TaskPool
    tokens: Counter[str] = field(default_factory=Counter)
    """Generated tokens by role since this process opened the run."""
    ledger: CostLedger = field(default_factory=CostLedger)
    """USD spent on role models, by role and generation (``costs.json``), and the budget."""
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    """One event loop per run, on its own thread: langchain-openai caches HTTP clients
    bound to the loop that made them, so a fresh ``asyncio.run`` per node would break
    them ("Event loop is closed")."""

    def __post_init__(self) -> None:
        threading.Thread(target=self.loop.run_forever, daemon=True, name="acdc-loop").start()

    def run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the run's event loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def breeder(self) -> Breeder:
        """The breeder configured by the run's settings."""
        return make_breeder(self.ctx, self.population)

    def ensure_server(self) -> None:
        """Restart a dead owned server, or wait for an attached one to come back."""
        if not self.server.healthy():
            log.warning("population server(s) %s down; restarting", self.server.urls)
            self.server.restart()

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[PopulationClient]:
        """A population client bound to the running event loop, closed after use."""
        async with open_client(self.ctx, self.server.urls, self.population.store) as client:
            yield client

    def judge(self) -> Judge:
        """The judge role."""
        caller = caller_for(self.ctx, "judge", self.server.url, self.ledger)
        return Judge(caller, self.ctx.prompts_dir)

    def subjects(self, client: PopulationClient) -> Subjects:
        """Experts answering task instances, graded by the deterministic graders or judge."""
        return Subjects(
            client,
            self.judge(),
            max_tokens=self.ctx.subject_max_tokens,
            concurrency=subject_concurrency(self.ctx),
            prompts_dir=self.ctx.prompts_dir,
        )

    def pipeline(self) -> TaskPipeline:
        """Scientist, judge and curator wired for task proposals."""
        ctx = self.ctx
        scientist = Scientist(
            caller_for(ctx, "scientist", self.server.url, self.ledger),
            reflection_rounds=ctx.reflection_rounds,
            prompts_dir=ctx.prompts_dir,
        )
        curator = Curator(
            caller_for(ctx, "curator", self.server.url, self.ledger),
            self.index,
            novelty_threshold=ctx.novelty_threshold,
            duplicate_threshold=ctx.duplicate_threshold,
            neighbours=ctx.novelty_neighbours,
            benchmarks=self.benchmarks,
            contamination_threshold=ctx.contamination_threshold,
            prompts_dir=ctx.prompts_dir,
        )
        rubric = not rubric_off(self.run.root, ctx)  # an uncalibrated judge grades no rubric
        return TaskPipeline(
            scientist, self.judge(), curator, validate=ctx.validate_tasks, rubric=rubric
        )

    def close(self) -> None:
        """Stop the server this run started and release the vector store."""
        self.server.stop()
        self.index.close()
        if self.benchmarks is not None:
            self.benchmarks.close()
        if self.loop.is_running():  # an aborted phase leaves requests pending: end them
            with contextlib.suppress(TimeoutError, RuntimeError):
                asyncio.run_coroutine_threadsafe(_cancel_pending(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)


async def _cancel_pending() -> None:
    """Cancel every other task of the running loop and wait until they have ended."""
    pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def _open(ctx: Context) -> RunResources:
    run = RunDir(ctx.run_dir)
    population = bootstrap(ctx)
    server = PopulationServer.for_run(ctx, population.base_dir).start()
    chroma = run.chroma_dir
    index = TaskIndex(
        None if ctx.chroma_host else chroma, host=ctx.chroma_host, port=ctx.chroma_port
    )
    benchmarks = None
    if ctx.benchmark_files:
        benchmarks = BenchmarkIndex(
            None if ctx.chroma_host else chroma, host=ctx.chroma_host, port=ctx.chroma_port
        )
        for path in ctx.benchmark_files:
            benchmarks.add_jsonl(path)
    return RunResources(
        ctx=ctx,
        run=run,
        population=population,
        server=server,
        index=index,
        benchmarks=benchmarks,
        pool=TaskPool.open(run.root),
        ledger=CostLedger(ctx.cost_budget_usd, run.costs_file),
    )


_REGISTRY: RunRegistry[RunResources] = RunRegistry(_open)
resources_for = _REGISTRY.get
close_all = _REGISTRY.close_all
