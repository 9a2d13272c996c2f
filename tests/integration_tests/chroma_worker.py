"""A separate process running the curator's gates against a ChromaDB server.

``python -m tests.integration_tests.chroma_worker HOST PORT ROLE_URL TASKS OUT BENCH``:
loads the benchmark JSONL BENCH into the server's contamination collection, admits each
task of the JSON file TASKS (one after another, as a run does) through a Curator whose
indexes live on the server, and writes ``[{task_id, accepted, gate, reason}]`` to OUT.
Used by test_chroma_server to run two such processes on one collection.
"""

import asyncio
import json
import sys
from pathlib import Path

from acdc.agents.curator import Curator
from acdc.agents.structured import caller_for
from acdc.context import Context
from acdc.tasks import Task
from acdc.vectorstore.contamination import BenchmarkIndex
from acdc.vectorstore.tasks import TaskIndex


async def admit_all(
    host: str, port: int, role_url: str, tasks: list[Task], bench: str
) -> list[dict[str, object]]:
    ctx = Context(curator_base_url=role_url, curator_model="stub", curator_retries=0)
    with TaskIndex(host=host, port=port) as index, BenchmarkIndex(host=host, port=port) as known:
        known.add_jsonl(bench)
        curator = Curator(
            caller_for(ctx, "curator", role_url),
            index,
            novelty_threshold=ctx.novelty_threshold,
            neighbours=ctx.novelty_neighbours,
            benchmarks=known,
            contamination_threshold=ctx.contamination_threshold,
        )
        results = []
        for task in tasks:
            admission = await curator.admit(task)
            results.append(
                {
                    "task_id": task.id,
                    "accepted": admission.accepted,
                    "gate": admission.gate,
                    "reason": admission.reason,
                }
            )
        return results


def main() -> None:
    host, port, role_url, tasks_file, out, bench = sys.argv[1:7]
    tasks = [Task.model_validate(t) for t in json.loads(Path(tasks_file).read_text())]
    results = asyncio.run(admit_all(host, int(port), role_url, tasks, bench))
    Path(out).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
