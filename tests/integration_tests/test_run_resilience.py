"""``acdc run`` survives SIGKILL, a dying server and a bad config (fake model words).

Each run is a real ``acdc run`` process with the real run folder, SQLite checkpoints,
breeding, ChromaDB and graders; only the models' words come from tests/fake_stack. A run
killed mid-phase and resumed must end exactly like a run that was never interrupted.
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from acdc.runstore import EvaluationStore
from acdc.taskpool import TaskPool
from tests.fake_stack import FakePopulation, FakeRoles, fake_settings, seed_references

pytestmark = pytest.mark.integration

ACDC = [sys.executable, "-m", "acdc.cli", "run"]


def options(runs: Path, tiny_base: Path, population: FakePopulation, roles: FakeRoles) -> list[str]:
    values = fake_settings(runs, tiny_base, population, roles)
    values |= {"run_id": "r", "task_rounds": 1, "adapt_every": 5, "subject_concurrency": 4}
    return [f"--{key.replace('_', '-')}={value}" for key, value in values.items()]


def start(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(process: subprocess.Popen[bytes], timeout: float = 600) -> str:
    out, _ = process.communicate(timeout=timeout)
    text = out.decode(errors="replace")
    assert process.returncode == 0, text[-3000:]
    return text


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 300
    while not condition():
        assert process.poll() is None, f"run ended before {what}: {process.stdout.read()[-2000:]!r}"  # type: ignore[union-attr]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def outcome(run: Path) -> dict[str, object]:
    """What must not depend on interruptions: archives, pool, evaluation keys, experts."""
    store = EvaluationStore(run / "evaluations.jsonl")
    keys = [r.key for r in store.records()]
    lines = (run / "evaluations.jsonl").read_text().splitlines()
    assert len(lines) == len(set(keys)) == len(keys), "an evaluation was written twice"
    pool = TaskPool.open(run)
    for task_id in pool.ever():
        assert (run / "tasks" / f"{task_id}.json").is_file(), f"task {task_id} lost"
    archives = {
        p.name: json.loads(p.read_text())["survivors"] for p in (run / "archive").glob("*.json")
    }
    experts = sorted(p.name for p in (run / "experts").iterdir() if not p.name.startswith("."))
    for survivors in archives.values():
        assert set(survivors) <= set(experts), "an archived expert is missing"
    return {
        "archives": archives,
        "active": sorted(pool.active),  # concurrent proposals may land in either order
        "keys": sorted(keys),
        "scores": sorted((r.key, r.score) for r in store.records()),
        "experts": experts,
    }


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[FakePopulation, FakeRoles]]:
    references = seed_references()
    with FakePopulation(references, delay=0.01) as population, FakeRoles(references) as roles:
        yield population, roles


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, tiny_base: Path) -> dict[str, object]:
    """The same run, never interrupted (its own fake stack, same scripted words)."""
    references = seed_references()
    runs = tmp_path_factory.mktemp("reference")
    with FakePopulation(references) as population, FakeRoles(references) as roles:
        finish(start(ACDC + options(runs, tiny_base, population, roles)))
    return outcome(runs / "r")


def fresh_stack(delay: float = 0.01) -> tuple[FakePopulation, FakeRoles]:
    references = seed_references()
    return FakePopulation(references, delay=delay), FakeRoles(references)


def test_sigkill_during_evaluation_then_resume_matches_an_uninterrupted_run(
    tmp_path: Path, tiny_base: Path, reference: dict[str, object]
) -> None:
    population, roles = fresh_stack()
    with population, roles:
        args = options(tmp_path, tiny_base, population, roles)
        process = start(ACDC + args)
        log = tmp_path / "r" / "evaluations.jsonl"
        wait_for(
            lambda: log.exists() and len(log.read_text().splitlines()) >= 30, process, "evaluations"
        )
        process.send_signal(signal.SIGKILL)
        process.wait()
        done_before = len(log.read_text().splitlines())
        assert done_before < len(reference["keys"])  # type: ignore[arg-type]
        finish(start([*ACDC, *args, "--resume", "r"]))
    assert outcome(tmp_path / "r") == reference


def test_sigkill_during_breeding_then_resume_matches_an_uninterrupted_run(
    tmp_path: Path, tiny_base: Path, reference: dict[str, object]
) -> None:
    population, roles = fresh_stack()
    with population, roles:
        # Children of generation 1 are saved, then their sanity check stalls: kill there.
        population.block_model_prefix = "g001-"
        args = options(tmp_path, tiny_base, population, roles)
        process = start(ACDC + args)
        wait_for(population.blocked.is_set, process, "the generation-1 sanity check")
        assert list((tmp_path / "r" / "experts").glob("g001-*"))
        process.send_signal(signal.SIGKILL)
        process.wait()
        population.block_model_prefix = ""
        finish(start([*ACDC, *args, "--resume", "r"]))
    assert outcome(tmp_path / "r") == reference


def test_an_attached_server_that_dies_mid_generation_is_waited_for(
    tmp_path: Path, tiny_base: Path, reference: dict[str, object]
) -> None:
    population, roles = fresh_stack(delay=0.2)  # slow answers: the death lands mid-phase
    port = int(population.url.rsplit(":", 1)[1].split("/")[0])
    with roles:
        args = options(tmp_path, tiny_base, population, roles)
        process = start(ACDC + args)
        log = tmp_path / "r" / "evaluations.jsonl"
        wait_for(
            lambda: log.exists() and len(log.read_text().splitlines()) >= 30, process, "evaluations"
        )
        population.close()  # the server goes away mid-evaluation, longer than retries last ...
        time.sleep(8)
        # ... and comes back on the same address with no adapters loaded; the same
        # process waits for it, re-loads what it needs and finishes.
        with FakePopulation(population.references, port=port):
            text = finish(process)
    assert outcome(tmp_path / "r") == reference
    assert "unreachable" in text or "missing after attempt" in text


def test_bad_settings_are_refused_at_start_naming_the_field(tmp_path: Path) -> None:
    cases = {
        "crossover": ["--crossover", "average"],
        "seed_adapters": ["--seed-adapters", str(tmp_path / "nope")],
        "archive_size": ["--archive-size", "-1"],
        "judge_base_url": ["--judge-base-url", "http://127.0.0.1:9/v1"],
    }
    env = {**os.environ, "ACDC_RUNS_DIR": str(tmp_path)}
    for field, extra in cases.items():
        result = subprocess.run(ACDC + extra, capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 2, (field, result.stderr[-2000:])
        assert field in result.stderr, (field, result.stderr[-2000:])
    assert not (tmp_path / "default" / "experts").exists()  # nothing started
