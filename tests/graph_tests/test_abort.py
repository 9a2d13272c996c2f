"""Ctrl-C twice aborts ``acdc run`` cleanly: one line saying how to resume, exit 130.

The second signal lands while subject requests are in flight on the (fake) population
server; the run must not spill tracebacks of its pending requests, and a resume must
finish with every (expert, task, instance) evaluated once.
"""

import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from acdc.cli import main
from acdc.graphs.resources import close_all
from acdc.runstore import EvaluationStore
from tests.fake_stack import FakePopulation, FakeRoles, fake_settings, seed_references

ROOT = Path(__file__).resolve().parents[2]


def test_a_second_ctrl_c_aborts_with_one_line_and_the_run_resumes(
    tmp_path: Path, tiny_base: Path
) -> None:
    references = seed_references()
    with FakePopulation(references, delay=0.2) as population, FakeRoles(references) as roles:
        settings = fake_settings(tmp_path / "runs", tiny_base, population, roles)
        settings |= {"generations": 1, "initial_pool": 10, "request_retries": 0}
        settings |= {"subject_concurrency": 2, "sanity_check": False}
        config = tmp_path / "run.yaml"
        config.write_text(yaml.safe_dump(settings))
        command = [sys.executable, "-m", "acdc.cli", "run", "--config", str(config),
                   "--run-id", "a"]  # fmt: skip
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        evaluations = tmp_path / "runs" / "a" / "evaluations.jsonl"
        deadline = time.monotonic() + 300
        while not (evaluations.exists() and len(evaluations.read_text().splitlines()) >= 3):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 130, output[-3000:]
        assert "run a aborted; continue it with --resume a" in output
        assert "Traceback" not in output and "Exception ignored" not in output, output[-3000:]

        main(["run", "--resume", "a", "--runs-dir", settings["runs_dir"]])  # type: ignore[list-item]
        close_all()
    keys = [r.key for r in EvaluationStore(evaluations).records()]
    assert keys and len(keys) == len(set(keys))
    assert (tmp_path / "runs" / "a" / "archive" / "gen-001.json").exists()
