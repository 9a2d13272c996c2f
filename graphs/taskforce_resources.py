"""What a task force needs besides a question: the population server, the run's skills.

Like ``resources.py`` for the coevolution run, but lighter: one ``TaskForceResources``
per run folder and process (``registry.py``), opened on first use (bootstrap the
population, start or attach to the vLLM server) and closed at exit. Settings that may
change per call (size, members, selector, router) are read from the Context each call
brings, so LangGraph Studio can change them between questions; the server settings come
from the first one.

Population clients and judges are made per call: their HTTP clients belong to the
event loop of the call, and the task force graph runs under the web app's loop,
Studio's, or a test's ``asyncio.run``.
"""

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from acdc.agents.calibration import left_out
from acdc.agents.judge import Judge
from acdc.agents.structured import caller_for
from acdc.context import Context
from acdc.graphs.completion import complete_skills
from acdc.graphs.registry import RunRegistry
from acdc.population.bootstrap import Population, bootstrap
from acdc.population.client import PopulationClient, open_client
from acdc.population.server import PopulationServer
from acdc.population.taskforce import (
    RunSkills,
    TaskForcePlan,
    choose_task_forces,
    route,
    run_skills,
    save_plan,
)
from acdc.rundir import RunDir
from acdc.types import ExpertId
from acdc.vectorstore.tasks import TaskIndex

log = logging.getLogger(__name__)

ROUTE_NEIGHBOURS = 5
"""Nearest tasks of the run the router looks at for one question."""


@dataclass
class TaskForceResources:
    """The population and server of one run, and its skill matrix once read."""

    ctx: Context
    population: Population
    server: PopulationServer
    _skills: RunSkills | None = field(default=None, repr=False)
    _plans: dict[tuple[object, ...], TaskForcePlan] = field(default_factory=dict, repr=False)
    _index: TaskIndex | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def skills(self) -> RunSkills:
        """The run's skill matrix over every task ever active (read once).

        With ``complete_skills`` every candidate (the seed included) is first evaluated
        on every task ever active (``graphs/completion.py``); cells still missing are
        masked.
        """
        with self._lock:
            if self._skills is None:
                ctx = self.ctx
                leave_out = left_out(ctx.run_dir, ctx)  # rubric: judge untrusted
                if ctx.complete_skills:
                    urls, store = self.server.urls, self.population.store
                    done = complete_skills(ctx, urls, store, leave_out)
                    log.info("skill matrix completed: %s", done)
                self._skills = run_skills(
                    ctx.run_dir,
                    ctx.pass_threshold,
                    ctx.instances_per_task,
                    candidates=[ctx.served_model_name],
                    leave_out=leave_out,
                )
                if leave_out:
                    print(
                        f"{len(leave_out)} rubric tasks left out: the run's judge is not "
                        "calibrated (judge_calibration.json; trust_judge overrides)",
                        flush=True,
                    )
                if self._skills.missing:
                    print(
                        f"skill matrix: {self._skills.missing} of {self._skills.solved.size} "
                        "cells not evaluated (masked: neither pass nor fail)",
                        flush=True,
                    )
            return self._skills

    def plan(self, ctx: Context) -> TaskForcePlan:
        """The task force of ``ctx.taskforce_size`` picked from the run, and its baselines.

        Chosen once per setting and saved to ``<run>/taskforce.json``.
        """
        key = (
            ctx.taskforce_size,
            tuple(ctx.taskforce_required),
            ctx.random_seed,
            ctx.answer_temperature,
            ctx.seed_sample_temperature,
        )
        skills = self.skills()
        with self._lock:
            if key not in self._plans:
                plan = choose_task_forces(
                    skills,
                    ctx.taskforce_size,
                    seed=ctx.served_model_name,
                    required=ctx.taskforce_required,
                    random_seed=ctx.random_seed,
                    temperature=ctx.answer_temperature,
                    seed_temperature=ctx.seed_sample_temperature,
                )
                path = save_plan(self.ctx.run_dir, plan)
                log.info("task force %s (saved to %s)", ", ".join(plan.selected.members), path)
                self._plans[key] = plan
            return self._plans[key]

    def members(self, ctx: Context) -> list[ExpertId]:
        """``ctx.taskforce_members`` when given, else the task force picked from the run.

        Raises:
            ValueError: An explicit member is not an expert of the run.
        """
        if not ctx.taskforce_members:
            picked: list[ExpertId] = self.plan(ctx).selected.members
            return picked
        unknown = [e for e in ctx.taskforce_members if not self.population.store.exists(e)]
        if unknown:
            raise ValueError(
                f"taskforce_members: {', '.join(unknown)} not in {self.population.store.root}"
            )
        return list(ctx.taskforce_members)

    async def route(self, question: str, members: list[ExpertId]) -> tuple[ExpertId, str]:
        """The member passing most of the run's tasks nearest ``question``, and why."""
        neighbours = await asyncio.to_thread(self.index().nearest, question, ROUTE_NEIGHBOURS)
        tasks = [n.task_id for n in neighbours]
        chosen = members[route(self.skills(), members, tasks)]
        names = ", ".join(str(n.metadata.get("name", n.task_id)) for n in neighbours)
        return chosen, f"routed to {chosen} by the nearest tasks ({names or 'none indexed'})"

    def index(self) -> TaskIndex:
        """The run's ChromaDB task index (opened on first use)."""
        with self._lock:
            if self._index is None:
                ctx = self.ctx
                path = None if ctx.chroma_host else RunDir(ctx.run_dir, read_only=True).chroma_dir
                self._index = TaskIndex(path, host=ctx.chroma_host, port=ctx.chroma_port)
            return self._index

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[PopulationClient]:
        """A population client for the running event loop, closed after use."""
        async with open_client(self.ctx, self.server.urls, self.population.store) as client:
            yield client

    def judge(self, ctx: Context) -> Judge:
        """The judge role as ``ctx`` configures it."""
        return Judge(caller_for(ctx, "judge", self.server.url), ctx.prompts_dir)

    def close(self) -> None:
        """Stop a server this process started and release the task index."""
        self.server.stop()
        if self._index is not None:
            self._index.close()


def _open(ctx: Context) -> TaskForceResources:
    """Bootstrap the run's population and start (or attach to) its server.

    Raises:
        FileNotFoundError: The run folder does not exist.
    """
    if not ctx.run_dir.is_dir():
        raise FileNotFoundError(f"run folder {ctx.run_dir} does not exist")
    population = bootstrap(ctx)
    server = PopulationServer.for_run(ctx, population.base_dir).start()
    return TaskForceResources(ctx=ctx, population=population, server=server)


_REGISTRY: RunRegistry[TaskForceResources] = RunRegistry(_open)
taskforce_resources = _REGISTRY.get
close_all = _REGISTRY.close_all
