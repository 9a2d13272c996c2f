"""``langgraph dev`` serves the coevolution graph; one step runs through the SDK client.

The server, the graph, breeding, the run folder and ChromaDB are real; the population
server's and roles' words come from tests/fake_stack. LangGraph Studio itself is a hosted
web page and is not tested; it talks to this same server.
"""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_sync_client

from tests.fake_stack import FakePopulation, FakeRoles, fake_settings, seed_references
from tests.integration_tests.conftest import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    langgraph = Path(sys.executable).with_name("langgraph")
    log = (tmp_path / "langgraph-dev.log").open("wb")
    process = subprocess.Popen(
        [str(langgraph), "dev", "--port", str(port), "--no-browser", "--no-reload"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_TRACING": "false"},
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, (tmp_path / "langgraph-dev.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "langgraph dev did not start"
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        yield url
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=60)


def test_langgraph_dev_runs_the_bootstrap_step_through_the_sdk(
    dev_server: str, tmp_path: Path, tiny_base: Path
) -> None:
    references = seed_references()
    with FakePopulation(references) as population, FakeRoles(references) as roles:
        context = fake_settings(tmp_path / "runs", tiny_base, population, roles)
        context["run_id"] = "studio"
        client = get_sync_client(url=dev_server)
        assistants = client.assistants.search(graph_id="coevolution")
        assert assistants, "the coevolution graph is not served"
        thread = client.threads.create()
        client.runs.wait(
            thread["thread_id"],
            "coevolution",
            input={},
            context=context,
            interrupt_after=["bootstrap"],
        )
        state = client.threads.get_state(thread["thread_id"])
    assert state["next"] == ["seed_tasks"]
    archive = state["values"]["archive"]
    assert archive[0] == "base" and len(archive) == 3
    run = tmp_path / "runs" / "studio"
    assert (run / "config.yaml").is_file()
    assert all((run / "experts" / expert).is_dir() for expert in archive)
