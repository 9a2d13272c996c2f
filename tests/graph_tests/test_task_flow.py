"""Pipelined pool growth on the fake stack: proposals stay in flight, progress is shown.

The role stub answers each task draft after a short delay and records how many drafts
were in flight at once; breeding, the pool, ChromaDB, the graders and the graph are real.
"""

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from acdc.context import Context
from acdc.graphs import task_flow
from acdc.graphs.coevolution import builder
from acdc.graphs.resources import close_all
from acdc.taskpool import TaskPool
from acdc.tasks import load_tasks, seed_tasks_dir
from tests.fake_stack import FakePopulation, FakeRoles, fake_settings, seed_references


class SlowScientist(FakeRoles):
    """FakeRoles whose drafts take 0.3 s; counts drafts in flight at once."""

    def __init__(self, references: dict[str, str]) -> None:
        self.in_flight = 0
        self.most = 0
        self.count_lock = threading.Lock()
        super().__init__(references)

    def reply(self, body: dict[str, Any]) -> str:
        schema = body.get("response_format", {}).get("json_schema", {}).get("name", "")
        if schema != "TaskDraft":
            return super().reply(body)
        with self.count_lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        time.sleep(0.3)
        with self.count_lock:
            self.in_flight -= 1
        return super().reply(body)


def test_pool_growth_keeps_proposals_in_flight_and_shows_progress(
    tmp_path: Path,
    tiny_base: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(task_flow, "PROGRESS_EVERY", 0.0)
    references = seed_references()
    target = len(load_tasks(seed_tasks_dir())) + 6  # the seed tasks + 6 admitted, one by one
    with FakePopulation(references) as population, SlowScientist(references) as roles:
        settings = fake_settings(tmp_path / "runs", tiny_base, population, roles)
        settings |= {"run_id": "flow", "initial_pool": target, "task_batch": 2, "task_rounds": 10}
        settings |= {"scientist_concurrency": 5, "request_retries": 0}
        ctx = Context(**settings)  # type: ignore[arg-type]
        graph = builder.compile(checkpointer=InMemorySaver())
        config = {"configurable": {"thread_id": "flow"}, "recursion_limit": 50}
        for chunk in graph.stream({}, config, context=ctx, stream_mode="updates"):
            if "seed_tasks" in chunk:
                break
        close_all()
    pool = TaskPool.open(ctx.run_dir)
    assert len(pool.active) >= target
    # Five drafts at once: more than a micro-batch (2) ever has.
    assert roles.most == 5
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("[gen 0 seed_tasks] proposals")]
    assert len(lines) >= 6
    assert any(" 0 in flight" not in x for x in lines[:-1])  # others were in flight meanwhile
    assert "admitted" in lines[-1] and "tokens/s in and out" in lines[-1]
    made = json.loads((ctx.run_dir / "growth" / "seed_tasks-gen-000.json").read_text())
    record = next(
        json.loads(x)
        for x in (ctx.run_dir / "metrics.jsonl").read_text().splitlines()
        if '"phase": "seed_tasks"' in x
    )
    assert record["proposals"] == made["proposals"] >= len(record["accepted"]) >= 6
    # Stopped starting proposals once the pool was full: at most one in flight per slot.
    assert made["proposals"] <= 6 + 5
