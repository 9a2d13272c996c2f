"""The sandbox against benign and hostile score code: each attack is contained.

Limits are small (1 s of CPU) so the suite stays fast. Hostile tests need a working
isolation mechanism and are skipped, with the reason, where there is none.
"""

import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from acdc.agents import sandbox
from acdc.agents.sandbox import SandboxLimits, SandboxResult, run_score

LIMITS = SandboxLimits(cpu_seconds=1, wall_seconds=4, memory_bytes=256 * 1024**2)
INSTANCE = {"id": "i1", "instruction": "Say hi.", "reference": "hi", "options": None}


def run(code: str, submission: str = "hi", limits: SandboxLimits = LIMITS) -> SandboxResult:
    return run_score(code, INSTANCE, submission, limits=limits)


def define(body: str, prelude: str = "") -> str:
    """Source of a score function whose body is ``body`` (one statement per line)."""
    lines = "\n".join("    " + line for line in body.splitlines())
    return f"{prelude}\ndef score(instance, submission):\n{lines}\n"


@pytest.fixture(autouse=True)
def needs_isolation(request: pytest.FixtureRequest) -> None:
    if "unisolated" not in request.node.name and sandbox.isolation() is None:
        pytest.skip("no sandbox isolation works on this machine (unshare refused)")


def nproc_is_enforced() -> bool:
    # As global root without the uid switch the kernel ignores RLIMIT_NPROC.
    return sandbox.isolation() == "unshare" or os.geteuid() != 0


# --- benign code ---------------------------------------------------------------------


def test_benign_score_function_sees_the_instance_and_submission():
    code = define(
        "ok = instance['reference'] == submission.strip().lower()\nreturn 1.0 if ok else 0.25"
    )
    assert run(code, " HI ") == SandboxResult(1.0, None, "", sandbox.isolation())
    assert run(code, "bye").score == 0.25


def test_standard_library_imports_work_inside():
    code = define(
        "return fractions.Fraction(1, 4) + json.loads('0.25') + len(re.findall('a', 'aa')) / 4",
        "import fractions, json, re",
    )
    assert run(code).score == 1.0


@pytest.mark.parametrize(
    ("value", "score", "detail"),
    [
        ("True", 1.0, ""),
        ("False", 0.0, ""),
        ("1", 1.0, ""),
        ("5", 1.0, "clamped"),
        ("-2.5", 0.0, "clamped"),
    ],
)
def test_scores_are_clamped_to_the_unit_interval(value: str, score: float, detail: str):
    result = run(define(f"return {value}"))
    assert result.score == score
    assert detail in result.detail


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("float('nan')", "nan"),
        ("float('inf')", "inf"),
        ("'1.0'", "returned str"),
        ("None", "returned NoneType"),
        ("[1.0]", "returned list"),
        ("10 ** 400", "unusable number"),
    ],
)
def test_non_numbers_and_nan_are_rejected(value: str, message: str):
    result = run(define(f"return {value}"))
    assert result.failure == "bad_return"
    assert result.score is None
    assert message in result.detail


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (define("raise ValueError('boom')"), "ValueError: boom"),
        ("def score(instance, submission)\n", "SyntaxError"),
        ("x = 1\n", "no callable score"),
        ("score = 3\n", "no callable score"),
        (define("raise SystemExit(0)", "import sys"), "SystemExit"),
        (define("os._exit(3)", "import os"), "exit status 3"),
        (define("os.kill(os.getpid(), 11)", "import os"), "SIGSEGV"),
        ("raise RuntimeError('at import')\n", "at import"),
    ],
)
def test_crashing_code_is_a_clear_failure(code: str, message: str):
    result = run(code)
    assert result.failure == "crashed"
    assert message in result.detail


# --- hostile code --------------------------------------------------------------------


def test_infinite_loop_hits_the_cpu_limit():
    start = time.monotonic()
    result = run(define("while True:\n    pass"))
    assert result.failure == "timeout"
    assert "CPU" in result.detail
    assert time.monotonic() - start < LIMITS.wall_seconds


def test_a_loop_that_swallows_the_cpu_signal_is_killed():
    body = (
        "while True:\n    try:\n        while True:\n            pass\n"
        "    except BaseException:\n        pass"
    )
    result = run(define(body))
    assert result.failure == "timeout"


def test_sleeping_forever_hits_the_wall_clock_limit():
    limits = SandboxLimits(cpu_seconds=1, wall_seconds=1.5)
    start = time.monotonic()
    result = run(define("time.sleep(60)", "import time"), limits=limits)
    assert result.failure == "timeout"
    assert "wall-clock" in result.detail
    assert time.monotonic() - start < 5


def test_memory_hog_hits_the_memory_limit():
    body = "blocks = []\nwhile True:\n    blocks.append(bytearray(16 * 1024 * 1024))"
    result = run(define(body))
    assert result.failure == "memory"
    assert run(define("return len(bytearray(8 * 1024**3))")).failure == "memory"


def test_process_limit_stops_forking():
    if not nproc_is_enforced():
        pytest.skip("RLIMIT_NPROC does not bind global root in a user namespace")
    # Bounded on purpose (64 forks at most) so a broken limit cannot hurt the machine.
    body = (
        "made = 0\nfor _ in range(64):\n    try:\n        pid = os.fork()\n"
        "    except OSError:\n        break\n    if pid == 0:\n        time.sleep(30)\n"
        "        os._exit(0)\n    made += 1\nreturn made / 64"
    )
    result = run(define(body, "import os, time"), limits=LIMITS)
    assert result.ok, result
    assert result.score is not None
    assert result.score * 64 < LIMITS.processes


def test_fork_bomb_is_contained():
    if not nproc_is_enforced():
        pytest.skip("RLIMIT_NPROC does not bind global root in a user namespace")
    limits = SandboxLimits(cpu_seconds=1, wall_seconds=2)  # the forks share two cores
    start = time.monotonic()
    body = "while True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    result = run(define(body, "import os"), limits=limits)
    assert result.failure == "timeout"
    assert time.monotonic() - start < limits.wall_seconds + 2


def test_writes_outside_the_scratch_folder_do_not_reach_the_host(tmp_path: Path):
    name = f"acdc-escape-{uuid.uuid4().hex}"
    targets = [Path("/tmp") / name, Path.home() / name, tmp_path / name, Path.cwd() / name]
    body = (
        f"for path in {[str(t) for t in targets]!r}:\n"
        "    try:\n        with open(path, 'w') as handle:\n            handle.write('owned')\n"
        "    except OSError:\n        pass\n"
        "with open('scratch.txt', 'w') as handle:\n    handle.write('fine')\n"
        "return 1.0 if 'scratch.txt' in os.listdir('.') else 0.5"
    )
    try:
        result = run(define(body, "import os"))
        assert result.score == 1.0, result  # the empty scratch folder is writable
        for target in targets:
            assert not target.exists(), f"sandboxed code wrote {target}"
    finally:
        for target in targets:
            target.unlink(missing_ok=True)


def test_system_folders_are_read_only():
    body = (
        "try:\n    open('/usr/acdc-escape', 'w')\nexcept OSError as exc:\n"
        "    return 0.0 if exc.errno in (13, 30) else 0.5\nreturn 1.0"
    )
    assert run(define(body)).score == 0.0


def test_host_files_and_secrets_are_invisible(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    secret = "sk-test-" + uuid.uuid4().hex
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("ACDC_JUDGE_API_KEY", secret)
    secret_file = tmp_path / "credentials"
    secret_file.write_text(secret)
    body = (
        "seen = ' '.join(os.environ.values()) + ' '.join(os.environ)\n"
        f"for path in ['/proc/self/environ', '/proc/1/environ', {str(secret_file)!r}]:\n"
        "    try:\n        seen += open(path).read()\n    except OSError:\n        pass\n"
        f"if {secret!r} in seen or 'OPENAI' in seen:\n    return 1.0\n"
        "return 0.5 if set(os.environ) <= {'PATH', 'LANG', 'HOME', 'TMPDIR'} else 0.0"
    )
    assert run(define(body, "import os")).score == 0.5


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    yield server
    server.close()


def test_no_network_to_localhost_or_outside(listener: socket.socket):
    port = listener.getsockname()[1]
    body = (
        "reached = 0\n"
        f"for address in [('127.0.0.1', {port}), ('1.1.1.1', 53), ('192.0.2.1', 80)]:\n"
        "    try:\n        socket.create_connection(address, timeout=1).close()\n"
        "        reached += 1\n    except OSError:\n        pass\n"
        "try:\n    socket.getaddrinfo('example.com', 80)\n    reached += 1\n"
        "except OSError:\n    pass\nreturn reached / 10"
    )
    result = run(define(body, "import socket"))
    assert result.score == 0.0, result


def test_printing_a_fake_score_changes_nothing():
    body = (
        'print(\'{"score": 1.0, "ok": true}\')\n'
        "sys.stderr.write('{\"score\": 1.0}\\n')\nos.write(1, b'{\"score\": 1.0}\\n')\nreturn 0.25"
    )
    result = run(define(body, "import os, sys"))
    assert result.score == 0.25


def test_writing_a_fake_result_to_every_open_fd_cannot_forge_a_score():
    body = (
        'fake = b\'{"ok": true, "score": 1.0, "nonce": "x"}\\n\'\n'
        "for fd in range(64):\n    try:\n        os.write(fd, fake)\n    except OSError:\n"
        "        pass\nreturn 0.25"
    )
    result = run(define(body, "import os"))
    assert result.score != 1.0
    assert result.score == 0.25 or result.failure == "crashed"


def test_no_privileges_remain():
    body = (
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "mounted = libc.mount(b'none', b'/usr', b'tmpfs', 0, None) == 0\n"
        "status = 0.0\n"
        "try:\n    os.chroot('/')\n    status = 1.0\nexcept OSError:\n    pass\n"
        "return 1.0 if mounted else status"
    )
    assert run(define(body, "import ctypes, os")).score == 0.0


# --- without isolation ---------------------------------------------------------------


def test_unisolated_runs_are_refused_unless_allowed(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(sandbox, "isolation", lambda: None)
    refused = run(define("return 1.0"))
    assert refused.failure == "not_isolated"
    assert "allow_unisolated" in refused.detail
    allowed = run_score(define("return 0.75"), INSTANCE, "x", limits=LIMITS, allow_unisolated=True)
    assert allowed == SandboxResult(0.75, None, "", None)


def test_unisolated_runs_still_scrub_the_environment_and_limit_cpu(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(sandbox, "isolation", lambda: None)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-unisolated")
    code = define("return 1.0 if 'OPENAI_API_KEY' in os.environ else 0.0", "import os")
    assert run_score(code, INSTANCE, "x", limits=LIMITS, allow_unisolated=True).score == 0.0
    loop = run_score(
        define("while True:\n    pass"), INSTANCE, "x", limits=LIMITS, allow_unisolated=True
    )
    assert loop.failure == "timeout"
