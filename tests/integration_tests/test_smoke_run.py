"""The main job on the real stack: ``acdc run`` with configs/smoke.yaml, vLLM CPU, SmolLM2.

Mid-evaluation the vLLM server is killed; the run must restart it, re-load the adapters
it needs, and finish both generations with every (expert, task, instance) evaluated once.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from acdc.agents.calibration import rubric_off
from acdc.runstore import EvaluationStore
from acdc.taskpool import TaskPool

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(1800)
def test_smoke_run_survives_a_killed_server_and_completes(tmp_path: Path, seed_cache: Path) -> None:
    from tests.integration_tests.conftest import free_port

    command = [
        sys.executable, "-m", "acdc.cli", "run",
        "--config", str(ROOT / "configs" / "smoke.yaml"),
        "--runs-dir", str(tmp_path),
        "--cache-dir", str(seed_cache),
        "--vllm-port", str(free_port()),
        # The pool starts as the seed tasks (no scientist proposals at generation 0)
        # and two adaptation parents and one refill write the only proposals: each 135M proposal is
        # minutes on 2 cores, and test_roles_live covers the scientist's output itself.
        "--initial-pool", "10",
        "--adapt-parents", "2",
        "--adapt-budget", "3",  # one refill proposal at most
        "--judge-calibration-size", "4",
    ]  # fmt: skip
    log = (tmp_path / "run.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    run = tmp_path / "smoke"
    evaluations = run / "evaluations.jsonl"
    deadline = time.monotonic() + 1200
    while not (evaluations.exists() and len(evaluations.read_text().splitlines()) >= 20):
        assert process.poll() is None, (tmp_path / "run.log").read_text()[-4000:]
        assert time.monotonic() < deadline
        time.sleep(1)
    server_pid = int((run / "logs" / "vllm.pid").read_text().split()[0])
    os.killpg(server_pid, signal.SIGKILL)
    assert process.wait(timeout=1500) == 0, (tmp_path / "run.log").read_text()[-4000:]
    output = (tmp_path / "run.log").read_text()
    assert "generation budget reached (2)" in output
    assert "restarting" in output  # the run noticed the dead server and started a new one
    assert not (run / "logs" / "vllm.pid").exists()  # and stopped the new one at the end

    pool = TaskPool.open(run)
    store = EvaluationStore(evaluations)
    keys = [r.key for r in store.records()]
    assert len(keys) == len(set(keys)) == len(evaluations.read_text().splitlines())
    archive = json.loads((run / "archive" / "gen-002.json").read_text())["survivors"]
    assert len(archive) == 3
    off = rubric_off(run)  # a judge below the calibration bar grades no rubric task
    for expert in archive:  # survivors are evaluated on every scored task instance
        for task in pool.active_tasks():
            if off and task.grading == "rubric":
                continue
            for instance in task.instances[:3]:  # instances_per_task in configs/smoke.yaml
                assert (expert, task.id, instance.id) in store
    errors = [r for r in store.records() if r.error.startswith("subject failed")]
    assert not errors, errors[:3]
    summary = (run / "summary.md").read_text()
    assert "== generation 1" in summary and "== generation 2" in summary
    assert "judge calibration: agreement" in summary
