"""A real ChromaDB server (``chroma run``) shared by several processes.

The embedded store is single-process, which is why runs that share one use the server.
Two processes run the curator's gates at the same time on one collection and each sees
the other's tasks; the task-force router of a run reads the index from the server.
Only the role model's words are scripted (tests/fake_stack).
"""

import asyncio
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from acdc.context import Context
from acdc.graphs.taskforce import graph
from acdc.graphs.taskforce_resources import close_all
from acdc.population.lora import LoraDelta
from acdc.rundir import RunDir
from acdc.tasks import Task
from acdc.vectorstore.tasks import TaskIndex
from tests.fake_stack import FakePopulation, FakeRoles, task_draft
from tests.graph_tests.test_taskforce import TOPICS, make_run
from tests.integration_tests.conftest import free_port
from tests.stub_openai import StubOpenAI

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BENCHMARK = ROOT / "bench" / "data" / "example_benchmark.jsonl"


@pytest.fixture
def chroma(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """``chroma run`` on a free loopback port, with its own data folder."""
    port = free_port()
    cli = Path(sys.executable).parent / "chroma"
    log, data = (tmp_path / "chroma.log").open("wb"), str(tmp_path / "chroma-data")
    process = subprocess.Popen(
        [str(cli), "run", "--path", data, "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2).raise_for_status()
            break
        except httpx.HTTPError:
            assert process.poll() is None, (tmp_path / "chroma.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "chroma run did not answer within 120 s"
            time.sleep(0.5)
    try:
        yield "127.0.0.1", port
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def draft_task(n: int, task_id: str) -> dict[str, object]:
    draft = json.loads(task_draft(n, {}))
    for k, instance in enumerate(draft["instances"]):
        instance["id"] = f"i{k}"
    return Task.model_validate({**draft, "id": task_id}).model_dump(mode="json")


def curate(
    where: tuple[str, int], roles: StubOpenAI, tasks: list[dict[str, object]], folder: Path
) -> subprocess.Popen[bytes]:
    """Start a worker process admitting ``tasks``; its results land in ``folder/out.json``."""
    folder.mkdir()
    (folder / "tasks.json").write_text(json.dumps(tasks))
    args = [where[0], str(where[1]), roles.url, str(folder / "tasks.json")]
    args += [str(folder / "out.json"), str(BENCHMARK)]
    command = [sys.executable, "-m", "tests.integration_tests.chroma_worker", *args]
    return subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE)


def results(process: subprocess.Popen[bytes], folder: Path) -> dict[str, dict[str, object]]:
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    return {r["task_id"]: r for r in json.loads((folder / "out.json").read_text())}


def test_two_processes_run_the_curator_gates_on_one_server_collection(
    chroma: tuple[str, int], tmp_path: Path
) -> None:
    with FakeRoles({}) as roles:
        first = [draft_task(n, f"a{n}") for n in range(4)]
        second = [draft_task(n, f"b{n}") for n in range(4, 8)]
        runs = [curate(chroma, roles, tasks, tmp_path / name)
                for name, tasks in (("one", first), ("two", second))]  # fmt: skip
        one, two = (results(p, tmp_path / n) for p, n in zip(runs, ("one", "two"), strict=True))
        assert all(r["accepted"] for r in [*one.values(), *two.values()]), (one, two)
        # A third process offers copies of the first process's tasks and a benchmark
        # question: the shared collections refuse them.
        copies = [{**task, "id": f"c{n}"} for n, task in enumerate(first)]
        leak = draft_task(2, "leak")
        leak["description"] = "What is 9 times 6?"
        leak["instances"][0]["instruction"] = "What is 9 times 6?"  # type: ignore[index]
        again = results(
            curate(chroma, roles, [*copies, leak], tmp_path / "three"), tmp_path / "three"
        )
    for n in range(4):
        assert again[f"c{n}"]["gate"] == "duplicate", again[f"c{n}"]
        assert f"a{n}" in str(again[f"c{n}"]["reason"])
    assert again["leak"]["gate"] == "contamination", again["leak"]
    with TaskIndex(host=chroma[0], port=chroma[1]) as index:
        assert index.count() == 8


def test_the_task_force_router_reads_the_run_index_from_the_server(
    chroma: tuple[str, int],
    tmp_path: Path,
    tiny_base: Path,
    random_delta: Callable[..., LoraDelta],
) -> None:
    with FakePopulation({}) as population, FakeRoles({}) as roles:
        ctx = Context(
            runs_dir=str(tmp_path / "runs"),
            run_id="tf",
            cache_dir=str(tmp_path / "cache"),
            base_model=str(tiny_base),
            server_url=population.url.removesuffix("/v1"),
            request_retries=0,
            lora_rank=8,
            chroma_host=chroma[0],
            chroma_port=chroma[1],
            taskforce_router=True,
        )
        make_run(ctx.run_dir, tiny_base, random_delta)  # evaluations, experts, tasks t1..t4
        shutil.rmtree(ctx.run_dir / "chroma")  # its embedded index: only the server's counts
        RunDir(ctx.run_dir).record_config(ctx)
        tasks = [Task.model_validate(json.loads(p.read_text()))
                 for p in sorted((ctx.run_dir / "tasks").glob("*.json"))]  # fmt: skip
        assert [t.id for t in tasks] == list(TOPICS)
        # The run's index on the server is written by another process (as a run's is).
        writer = curate(chroma, roles, [t.model_dump(mode="json") for t in tasks], tmp_path / "w")
        assert all(r["accepted"] for r in results(writer, tmp_path / "w").values())
        question = "How many beats does a half note last in 4/4 time?"
        try:
            result = asyncio.run(graph.ainvoke({"question": question}, context=ctx))
        finally:
            close_all()
    assert result["winner"] == "e3" and population.chats == [("e3", question)]
    assert result["why"].startswith("routed to e3 by the nearest tasks (Note lengths")
