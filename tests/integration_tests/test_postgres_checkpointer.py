"""``acdc run`` with LangGraph checkpoints in a real, throwaway PostgreSQL server.

The test starts the system's PostgreSQL (``initdb`` + ``pg_ctl`` in a temp folder, on a
free loopback port), runs the fake-stack run of test_run_resilience with
``--checkpointer-url``, kills it with SIGKILL mid-evaluation, resumes it, and expects
exactly the outcome of the same run never interrupted on SQLite. Skipped, with the
reason, where no PostgreSQL server binaries or no driver are installed.
"""

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_stack import FakePopulation, FakeRoles, seed_references
from tests.integration_tests.conftest import free_port
from tests.integration_tests.test_run_resilience import (
    ACDC,
    finish,
    options,
    outcome,
    start,
    wait_for,
)

pytestmark = pytest.mark.integration

INITDB = ["--auth=trust", "-E", "UTF8", "--no-sync"]


def postgres_bin() -> Path | None:
    """The folder holding initdb and pg_ctl: on PATH, or Debian's versioned folders."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[4]))
    return next((Path(f) for f in reversed(folders) if Path(f, "initdb").exists()), None)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server of its own, trust auth on 127.0.0.1; removed afterwards."""
    pytest.importorskip("langgraph.checkpoint.postgres", reason="the postgres extra is missing")
    pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is missing")
    binaries = postgres_bin()
    if binaries is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): install postgresql")
    folder = Path(tempfile.mkdtemp(prefix="acdc-pg-"))
    # PostgreSQL refuses to run as root: as root, run it as the unprivileged 'nobody'.
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        shutil.chown(folder, "nobody", "nogroup")
    data, port = folder / "data", free_port()
    subprocess.run(
        [*as_user, str(binaries / "initdb"), "-D", str(data), "-U", "acdc", *INITDB],
        check=True,
        capture_output=True,
        timeout=120,
    )
    server = f"-h 127.0.0.1 -p {port} -k {folder} -F"
    ctl = [*as_user, str(binaries / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        [*ctl, "-l", str(folder / "server.log"), "-o", server, "-w", "start"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        yield f"postgresql://acdc@127.0.0.1:{port}/postgres"
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            subprocess.run([*ctl, "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, tiny_base: Path) -> dict[str, object]:
    """The same run never interrupted, with SQLite checkpoints."""
    references = seed_references()
    runs = tmp_path_factory.mktemp("sqlite")
    with FakePopulation(references) as population, FakeRoles(references) as roles:
        finish(start(ACDC + options(runs, tiny_base, population, roles)))
    return outcome(runs / "r")


def checkpoints_of(url: str, thread: str) -> int:
    import psycopg

    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM checkpoints WHERE thread_id = %s", (thread,)
        ).fetchone()
    return int(row[0]) if row else 0


def test_sigkill_mid_evaluation_then_resume_on_postgres_matches_sqlite(
    tmp_path: Path, tiny_base: Path, postgres_url: str, reference: dict[str, object]
) -> None:
    references = seed_references()
    with FakePopulation(references, delay=0.01) as population, FakeRoles(references) as roles:
        args = [
            *options(tmp_path, tiny_base, population, roles),
            f"--checkpointer-url={postgres_url}",
        ]
        process = start(ACDC + args)
        log = tmp_path / "r" / "evaluations.jsonl"
        wait_for(
            lambda: log.exists() and len(log.read_text().splitlines()) >= 30, process, "evaluations"
        )
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert len(log.read_text().splitlines()) < len(reference["keys"])  # type: ignore[arg-type]
        killed_at = checkpoints_of(postgres_url, "r")
        assert killed_at > 0  # the run checkpointed into Postgres before the kill
        finish(start([*ACDC, *args, "--resume", "r"]))
    assert not (tmp_path / "r" / "checkpoints.sqlite").exists()
    assert checkpoints_of(postgres_url, "r") > killed_at
    assert outcome(tmp_path / "r") == reference
