"""Forking a run on the fake stack: a fork at K with the same settings redoes RUN's K+1.

Breeding, the run folder, ChromaDB, graders and checkpoints are real; the role models'
and the population server's words are scripted (tests/fake_stack.py).
"""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from langgraph.checkpoint.memory import InMemorySaver

from acdc.cli import main
from acdc.context import ConfigError, Context
from acdc.graphs.coevolution import builder
from acdc.graphs.fork import fork_run
from acdc.graphs.resources import close_all
from acdc.runstore import EvaluationStore
from acdc.taskpool import TaskPool
from tests.fake_stack import FakePopulation, FakeRoles, fake_settings, seed_references


@pytest.fixture
def stack() -> Iterator[tuple[FakePopulation, FakeRoles]]:
    references = seed_references()
    with FakePopulation(references) as population, FakeRoles(references) as roles:
        yield population, roles
    close_all()


def test_a_fork_at_k_with_the_same_settings_reproduces_the_next_generation(
    tmp_path: Path, tiny_base: Path, stack: tuple[FakePopulation, FakeRoles]
) -> None:
    population, roles = stack
    settings = fake_settings(tmp_path / "runs", tiny_base, population, roles)
    settings |= {"run_id": "orig", "generations": 2, "adapt_every": 5, "request_retries": 0}
    ctx = Context(**settings)  # type: ignore[arg-type]
    saver = InMemorySaver()
    graph = builder.compile(checkpointer=saver)
    limit = {"recursion_limit": 200}
    graph.invoke({}, {"configurable": {"thread_id": "orig"}, **limit}, context=ctx)
    close_all()
    orig = ctx.run_dir
    at_one = EvaluationStore(orig / "evaluations.jsonl").records()
    snapshot = json.loads((orig / "snapshots" / "gen-001.json").read_text())
    before = [r.key for r in at_one[: snapshot["evaluations"]]]
    chats_before = len(population.subject_chats())

    forked = Context(**{**settings, "run_id": "fork"})  # type: ignore[arg-type]
    fork_run(forked, "orig", 1, saver, saver)
    state = graph.invoke(None, {"configurable": {"thread_id": "fork"}, **limit}, context=forked)
    close_all()

    new = forked.run_dir
    assert state["generation"] == 2
    original = json.loads((orig / "archive" / "gen-002.json").read_text())
    again = json.loads((new / "archive" / "gen-002.json").read_text())
    assert again == original  # same children, scores, survivors
    assert TaskPool.open(new).active == TaskPool.open(orig).active
    records = EvaluationStore(new / "evaluations.jsonl").records()
    assert {r.key: r.score for r in records} == {r.key: r.score for r in at_one}
    # The fork evaluated generation 2's work only: nothing of generation <= 1 again.
    asked = population.subject_chats()[chats_before:]
    assert len(asked) == len(records) - len(before) > 0
    events = [json.loads(x)["event"] for x in (new / "metrics.jsonl").read_text().splitlines()]
    assert "fork" in events and events.count("generation") == 2
    assert Context.load(new / "config.yaml").run_id == "fork"
    # The experts are shared, not rewritten.
    child = again["candidates"][-1]
    assert (new / "experts" / child).is_dir()
    with pytest.raises(ConfigError, match="exists already"):
        fork_run(forked, "orig", 1, saver, saver)
    with pytest.raises(ConfigError, match="no snapshot after generation 7"):
        fork_run(Context(**{**settings, "run_id": "other"}), "orig", 7, saver, saver)  # type: ignore[arg-type]


def test_acdc_run_fork_on_the_command_line(
    tmp_path: Path, tiny_base: Path, stack: tuple[FakePopulation, FakeRoles]
) -> None:
    population, roles = stack
    settings = fake_settings(tmp_path / "runs", tiny_base, population, roles)
    settings |= {"generations": 1, "initial_pool": 11, "request_retries": 0}
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(settings))
    main(["run", "--config", str(config), "--run-id", "first"])
    main(["run", "--fork", "first", "--at-generation", "1", "--run-id", "second",
          "--runs-dir", settings["runs_dir"], "--generations", "2"])  # fmt: skip
    forked = tmp_path / "runs" / "second"
    assert json.loads((forked / "archive" / "gen-002.json").read_text())["survivors"]
    assert not (tmp_path / "runs" / "first" / "archive" / "gen-002.json").exists()
    with pytest.raises(SystemExit):
        main(["run", "--fork", "first", "--run-id", "third", "--runs-dir", settings["runs_dir"]])
