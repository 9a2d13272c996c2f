"""Keeps the fast tier fast: a slow unit test fails, and so does a session that imports vLLM.

The fast tier (``make test-fast``) is what a developer runs after every edit, so it must
stay under a minute on two cores. Two rules are checked here rather than left to review:

- A test whose setup, call or teardown takes longer than ``SECONDS_PER_PHASE`` fails
  with the time it took. The limit is several times what the slowest test here takes
  on two cores, so a loaded machine does not trip it; a test that needs longer is a
  graph run (tests/graph_tests) or needs a faster fixture.
- A session that ran only tests of this folder fails if ``vllm`` is in ``sys.modules``
  at its end: importing vLLM costs seconds and pulls in its CUDA/CPU plugins, and a
  test that needs vLLM belongs in tests/integration_tests. The check needs a session of
  this folder alone, because other tiers import vLLM legitimately in the same process;
  ``make test`` runs this folder first, in a session of its own, so CI enforces it.
  The message names the first test after which vLLM was loaded ("collection" when a
  test module, or something it imports, imports vLLM at module level).
"""

import sys
from collections.abc import Generator
from pathlib import Path

import pytest

SECONDS_PER_PHASE = 10.0
HERE = Path(__file__).parent

_vllm_loaded_by: list[str] = []


def pytest_collection_finish(session: pytest.Session) -> None:
    if "vllm" in sys.modules:
        _vllm_loaded_by.append("collection")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if call.when == "teardown" and "vllm" in sys.modules and not _vllm_loaded_by:
        _vllm_loaded_by.append(item.nodeid)
    if report.passed and call.duration > SECONDS_PER_PHASE:
        report.outcome = "failed"
        report.longrepr = (
            f"the {call.when} took {call.duration:.1f} s; a unit test's limit is "
            f"{SECONDS_PER_PHASE:.0f} s (tests/unit_tests/conftest.py): make it faster, or "
            "move a graph run to tests/graph_tests"
        )
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    alone = all(item.path.is_relative_to(HERE) for item in session.items)
    if alone and _vllm_loaded_by:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    else:
        _vllm_loaded_by.clear()  # another tier's tests ran too: nothing to report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _vllm_loaded_by:
        terminalreporter.write_sep("=", "fast tier imported vLLM", red=True)
        terminalreporter.write_line(
            f"vLLM was first seen loaded after {_vllm_loaded_by[0]}; a test that needs "
            "vLLM belongs in tests/integration_tests"
        )
