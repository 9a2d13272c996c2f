"""Keeps the fast tier fast: a slow unit test fails, and so does a session that imports vLLM.

The fast tier (``make test-fast``) is what a developer runs after every edit, so it must
stay under a minute on two cores. Two rules are checked here rather than left to review:

- A test whose setup, call or teardown uses more than ``CPU_SECONDS_PER_PHASE`` of CPU
  fails with what it used. CPU time (this process's, and that of the child processes
  it waited for) rather than wall time, because wall time grows with whatever else the
  machine runs: a wall-clock limit fails good tests on a busy CI host. The limit is
  well above what the slowest test here uses; a test that needs more is a graph run
  (tests/graph_tests) or needs a faster fixture. Sleeping is not counted: keep sleeps
  to fractions of a second.
- In a session of this folder alone, the first test after which ``vllm`` is in
  ``sys.modules`` fails: importing vLLM costs seconds and pulls in its CUDA/CPU
  plugins, and a test that needs vLLM belongs in tests/integration_tests. The check
  needs a session of this folder alone, because other tiers import vLLM legitimately
  in the same process; ``make test`` runs this folder first, in a session of its own,
  so CI enforces it. When a test module (or something it imports) imports vLLM at
  module level, the message says so ("collection"). The check is made in each test
  process, so it holds when pytest-xdist spreads the tier over workers.
"""

import os
import sys
from collections.abc import Generator
from pathlib import Path

import pytest

CPU_SECONDS_PER_PHASE = 10.0
HERE = Path(__file__).parent

_vllm_at_collection: list[bool] = []  # one entry once vLLM was found after collection
_vllm_blamed: list[str] = []  # the test already failed for it, in this process
_cpu_mark = [0.0]  # CPU seconds at the start of the current test phase


def cpu_seconds() -> float:
    """User and system time of this process and of its waited-for children."""
    return sum(os.times()[:4])


def pytest_runtest_logstart() -> None:
    _cpu_mark[0] = cpu_seconds()


def pytest_collection_finish(session: pytest.Session) -> None:
    if "vllm" in sys.modules:
        _vllm_at_collection.append(True)


def _this_folder_alone(session: pytest.Session) -> bool:
    return all(item.path.is_relative_to(HERE) for item in session.items)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    now = cpu_seconds()
    spent, _cpu_mark[0] = now - _cpu_mark[0], now
    if report.passed and spent > CPU_SECONDS_PER_PHASE:
        report.outcome = "failed"
        report.longrepr = (
            f"the {call.when} used {spent:.1f} CPU seconds; a unit test's limit is "
            f"{CPU_SECONDS_PER_PHASE:.0f} (tests/unit_tests/conftest.py): make it faster, "
            "or move a graph run to tests/graph_tests"
        )
    elif (
        call.when == "teardown"
        and "vllm" in sys.modules
        and not _vllm_blamed
        and _this_folder_alone(item.session)
    ):
        _vllm_blamed.append(item.nodeid)
        where = "collection" if _vllm_at_collection else item.nodeid
        report.outcome = "failed"
        report.longrepr = (
            f"the fast tier imported vLLM: it was first seen loaded after {where}; a test "
            "that needs vLLM belongs in tests/integration_tests"
        )
    return report
