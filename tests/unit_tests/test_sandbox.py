"""The sandbox against benign and hostile score code: each attack is contained.

Limits are small (1 s of CPU) so the suite stays fast. Hostile tests need a working
isolation mechanism and are skipped, with the reason, where there is none.
"""

import dataclasses
import hashlib
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acdc.agents import sandbox, sandbox_outcome
from acdc.agents.sandbox import SandboxLimits, run_score
from acdc.agents.sandbox_outcome import SandboxResult

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
        ("1 + 1e-9", 1.0, "clamped"),
        ("-1e-9", 0.0, "clamped"),
    ],
)
def test_float_noise_past_the_unit_interval_is_clamped(value: str, score: float, detail: str):
    result = run(define(f"return {value}"))
    assert result.score == score
    assert detail in result.detail


@pytest.mark.parametrize("value", ["5", "-2.5", "1e9", "1.01"])
def test_scores_far_outside_the_unit_interval_are_a_bad_return(value: str):
    # Before issue 11 these were clamped to 0 or 1 and counted as valid grades.
    result = run(define(f"return {value}"))
    assert (result.score, result.failure) == (None, "bad_return")
    assert "outside [0, 1]" in result.detail


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
    # A generous wall clock, so the CPU limit decides even on a loaded machine (where
    # one CPU second can take several wall seconds).
    limits = dataclasses.replace(LIMITS, wall_seconds=60)
    start = time.monotonic()
    result = run(define("while True:\n    pass"), limits=limits)
    assert result.failure == "timeout"
    assert "CPU" in result.detail
    assert time.monotonic() - start < limits.wall_seconds


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


# --- forged outcomes, sessions, ptrace and the ceiling (issue 11) --------------------
# Each of these failed before issue 11 (checked by running them on the old sandbox).


@pytest.fixture(params=["unshare", "unshare-userns"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test under each isolation mechanism that works here (root and non-root hosts)."""
    wanted = request.param
    if wanted not in sandbox.isolation_modes():
        pytest.skip(f"{wanted} does not work on this machine")
    monkeypatch.setattr(sandbox, "isolation", lambda: wanted)
    return str(wanted)


def forge_then_exit(line: str) -> str:
    """Score code that writes ``line`` to every descriptor, then ends without returning."""
    fake = line.encode() + b"\n"
    body = (
        f"fake = {fake!r}\n"
        "for fd in range(64):\n    try:\n        os.write(fd, fake)\n    except OSError:\n"
        "        pass\nos._exit(0)"
    )
    return define(body, "import os")


HOST_KINDS = ("sandbox_error", "not_isolated")


@pytest.mark.parametrize(
    ("line", "score", "failure"),
    [
        ('{"ok": false, "kind": "sandbox_error", "detail": "forged"}', None, "crashed"),
        ('{"ok": false, "kind": "not_isolated", "detail": "forged"}', None, "crashed"),
        ('{"ok": true, "score": 5}', None, "bad_return"),
        ('{"ok": true, "score": -1e300}', None, "bad_return"),
        ('{"ok": false, "kind": "crashed", "detail": "' + "x" * 15_000 + '"}', None, "crashed"),
        ('{"ok": true, "score": 1.0, "nonce": "x"}', None, "crashed"),
        ('{"ok": false, "kind": "crashed", "detail": {"a": 1}}', None, "crashed"),
    ],
)
def test_a_forged_outcome_then_exit_on_every_descriptor_is_validated(
    mode: str, line: str, score: float | None, failure: str
):
    result = run(forge_then_exit(line))
    assert (result.score, result.failure) == (score, failure), result
    assert len(result.detail) <= 2000


def test_forging_a_plain_score_only_chooses_the_score_code_own_grade(mode: str):
    # By design: score code chooses its score, so a well-formed line is its grade.
    assert run(forge_then_exit('{"ok": true, "score": 0.75}')).score == 0.75


def test_a_huge_integer_outcome_is_a_bad_return_not_a_raise(mode: str):
    result = run(forge_then_exit('{"ok": true, "score": ' + "9" * 400 + "}"))
    assert (result.score, result.failure) == (None, "bad_return")


def test_a_deeply_nested_outcome_is_refused(mode: str):
    nested = "[" * 5000 + "]" * 5000
    result = run(forge_then_exit('{"ok": false, "kind": "crashed", "detail": ' + nested + "}"))
    assert (result.score, result.failure) == (None, "crashed")


@pytest.mark.parametrize(
    ("raw", "failure"),
    [
        (b'{"ok": true, "score": ' + b"9" * 400 + b', "nonce": "N"}', "bad_return"),
        (
            b'{"ok": false, "kind": ' + b"[" * 5000 + b"]" * 5000 + b', "nonce": "N"}',
            "sandbox_error",
        ),
        (b'{"ok": false, "kind": "not_isolated", "detail": "", "nonce": "N"}', "sandbox_error"),
        (b'{"ok": true, "score": NaN, "nonce": "N"}', "bad_return"),
        (b'{"ok": "yes", "score": 1, "nonce": "N"}', "bad_return"),
        (b"\xff\xfe", "sandbox_error"),
    ],
)
def test_the_host_validates_the_supervisor_line_and_never_raises(raw: bytes, failure: str):
    result = sandbox_outcome.interpret(raw, "N", 0, "unshare")
    assert (result.score, result.failure) == (None, failure)


def test_code_cannot_ptrace_its_supervisor(mode: str):
    body = (
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]\n"
        "parent = os.getppid()\n"
        "if libc.ptrace(16, parent, None, None) == 0:\n"  # PTRACE_ATTACH
        "    time.sleep(0.1)\n    libc.ptrace(17, parent, None, None)\n    return 1.0\n"
        "return 0.0"
    )
    assert run(define(body, "import ctypes, os, time")).score == 0.0


def test_killpg_of_its_own_group_ends_only_the_code(mode: str):
    result = run(define("os.killpg(0, signal.SIGKILL)", "import os, signal"))
    assert result.failure == "crashed", result
    assert "SIGKILL" in result.detail


FOUR_HOLDERS = """
import os, time

def hold():
    try:
        block = bytearray(400 * 1024 * 1024)
        for i in range(0, len(block), 4096):
            block[i] = 1
        return block
    except MemoryError:
        return None

def score(instance, submission):
    r, w = os.pipe()
    for _ in range(3):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            if hold() is not None:
                os.write(w, b"1")
                time.sleep(5)
            os._exit(0)
    mine = hold()
    time.sleep(1.5)
    os.set_blocking(r, False)
    try:
        held = len(os.read(r, 16))
    except BlockingIOError:
        held = 0
    return (held + (mine is not None)) / 4
"""


def test_four_processes_of_400_mib_cannot_all_hold_their_memory(mode: str):
    cgroup = sandbox.sandbox_cgroup.layout() is not None
    if not cgroup and mode == "unshare-userns" and os.geteuid() == 0:
        pytest.skip("no cgroup, and RLIMIT_NPROC does not bind global root in a user namespace")
    result = run(FOUR_HOLDERS, limits=SandboxLimits(cpu_seconds=3, wall_seconds=15))
    # Old sandbox: 8 processes of 512 MiB each, so all four held 400 MiB (score 1.0).
    assert result.score is None or result.score <= (0.25 if cgroup else 0.5), result
    if result.score is None:
        assert result.failure == "memory", result


def test_the_call_cgroup_is_removed_even_after_the_code_forks_and_sleeps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if sandbox.sandbox_cgroup.layout() is None:
        pytest.skip("no cgroup can be made here: per-process limits only")
    made: list[Path] = []  # this call's own groups: other tests may run sandboxes in parallel
    real = sandbox.sandbox_cgroup.CallGroup

    def recording(*args: Any, **kwargs: Any) -> Any:
        group = real(*args, **kwargs)
        made.extend(group.dirs)
        return group

    monkeypatch.setattr(sandbox.sandbox_cgroup, "CallGroup", recording)
    body = "if os.fork() == 0:\n    time.sleep(60)\nreturn 0.5"
    assert run(define(body, "import os, time")).score == 0.5
    assert made and not [d for d in made if d.exists()], made


# --- running a submission in its own process -------------------------------------------


def test_run_submission_runs_a_program_on_stdin_with_a_time_limit():
    body = (
        "echo = run_submission('import sys\\nprint(sys.stdin.read().upper())', 'hi')\n"
        "slow = run_submission('while True:\\n    pass', timeout=0.5)\n"
        "fds = run_submission('import os\\nn = 0\\nfor fd in range(3, 64):\\n    try:\\n"
        "        os.fstat(fd)\\n        n += 1\\n    except OSError:\\n        pass\\nprint(n)')\n"
        "ok = echo['stdout'] == 'HI\\n' and echo['exit_code'] == 0\n"
        "ok = ok and slow['timed_out'] and slow['exit_code'] is None\n"
        "return 1.0 if ok and fds['stdout'] == '0\\n' else 0.0"
    )
    start = time.monotonic()
    assert run(define(body), limits=SandboxLimits(cpu_seconds=3, wall_seconds=10)).score == 1.0
    assert time.monotonic() - start < 8


def load_seed(name: str) -> dict[str, object]:
    path = Path(__file__).resolve().parents[2] / "tasks" / "seed" / f"{name}.json"
    return dict(json.loads(path.read_text()))


FORGING_SUBMISSIONS = {
    "writes a passing outcome to every descriptor, then exits": (
        "```python\nimport os\nfor fd in range(64):\n    try:\n"
        '        os.write(fd, b\'{"ok": true, "score": 1.0}\\n\')\n    except OSError:\n'
        "        pass\nos._exit(0)\n```"
    ),
    "reads the expected answers from the grader's memory": (
        "```python\nimport sys\ndef is_palindrome(s):\n    frame = sys._getframe(1)\n"
        "    cases = frame.f_globals['TESTS']['palindrome'][1]\n"
        "    return dict((args[0], want) for args, want in cases)[s]\n```"
    ),
    "kills its grader": "```python\nimport os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n```",
}


@pytest.mark.parametrize("submission", FORGING_SUBMISSIONS.values(), ids=FORGING_SUBMISSIONS.keys())
def test_a_submission_cannot_forge_its_grade_through_a_code_task(mode: str, submission: str):
    task = load_seed("seed-code-write-function")
    instances = {i["id"]: i for i in task["instances"]}  # type: ignore[attr-defined]
    limits = SandboxLimits(cpu_seconds=3, wall_seconds=15)
    code = str(task["score_code"])
    result = run_score(code, instances["palindrome"], submission, limits=limits)
    assert result.score in (0.0, None), result
    reference = run_score(
        code, instances["palindrome"], instances["palindrome"]["reference"], limits=limits
    )
    assert reference.score == 1.0, reference


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


# --- signals, the run nonce and unencodable text (issue 20) ---------------------------
# Each of these failed before issue 20 (checked by running them on the old sandbox).

EVERY_SIGNAL = (
    "for s in range(1, 65):\n    try:\n        os.kill(PID, s)\n    except OSError:\n        pass"
)


def test_every_signal_the_code_sends_its_supervisor_leaves_the_grade_its_own(mode: str):
    body = EVERY_SIGNAL.replace("PID", "os.getppid()") + "\ntime.sleep(0.3)\nreturn 0.5"
    result = run(define(body, "import os, time"))
    assert (result.score, result.failure) == (0.5, None), result


def test_a_submission_that_interrupts_the_supervisor_fails_its_own_grade(mode: str):
    task = load_seed("seed-code-write-function")
    instance = {i["id"]: i for i in task["instances"]}["palindrome"]  # type: ignore[attr-defined]
    submission = (
        "```python\nimport os, signal, time\nos.kill(1, signal.SIGINT)\ntime.sleep(0.3)\n```"
    )
    limits = SandboxLimits(cpu_seconds=3, wall_seconds=15)
    result = run_score(str(task["score_code"]), instance, submission, limits=limits)
    assert (result.score, result.failure) == (0.0, None), result


@pytest.mark.parametrize("signum", [34, 40, 64], ids=["SIGRTMIN", "SIGRTMIN+6", "SIGRTMAX"])
def test_code_killed_by_a_realtime_signal_is_a_crash_not_a_sandbox_error(mode: str, signum: int):
    result = run(define(f"os.kill(os.getpid(), {signum})\ntime.sleep(1)", "import os, time"))
    assert result.failure == "crashed", result
    assert f"signal {signum}" in result.detail or "SIGRT" in result.detail, result


NONCE = "5eed" * 8
FIND_NONCE = """
import gc, hashlib, re, sys

WANTED = HASH  # the code holds the nonce's hash only, so finding the hash proves nothing
HEX = re.compile("(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")


def found(text):
    return any(hashlib.sha256(m.encode()).hexdigest() == WANTED for m in HEX.findall(text))


def score(instance, submission):
    texts = []
    for obj in gc.get_objects():
        try:
            texts.append(repr(obj))
        except Exception:
            pass
    frame = sys._getframe(1)
    while frame is not None:
        texts.append(repr(frame.f_locals))
        frame = frame.f_back
    return 1.0 if any(found(t) for t in texts) else 0.0
"""


def test_the_code_cannot_read_the_nonce_that_marks_the_supervisor_line(
    mode: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(sandbox.secrets, "token_hex", lambda n=None: NONCE)
    wanted = hashlib.sha256(NONCE.encode()).hexdigest()
    result = run(FIND_NONCE.replace("HASH", repr(wanted)))
    assert (result.score, result.failure) == (0.0, None), result


def test_unencodable_text_from_the_sandbox_is_stored_as_valid_utf8(mode: str):
    result = run(define("raise ValueError('lone ' + chr(0xDC80) + chr(0xD800) + ' surrogates')"))
    assert result.failure == "crashed", result
    assert "lone \ufffd" in result.detail
    result.detail.encode("utf-8")  # strict: raises on a lone surrogate
    json.dumps(dataclasses.asdict(result), ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"ok": false, "kind": "crashed", "detail": "a \\udc80 b", "nonce": "N"}',
        b'{"ok": false, "kind": "crashed", "detail": "a \xff\xfe b", "nonce": "N"}',
    ],
)
def test_the_host_replaces_unencodable_text_in_the_supervisor_line(raw: bytes):
    result = sandbox_outcome.interpret(raw, "N", 0, "unshare")
    assert result.failure == "crashed"
    assert "\ufffd" in result.detail
    result.detail.encode("utf-8")


def test_unisolated_code_that_signals_its_supervisor_fails_its_own_grade(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(sandbox, "isolation", lambda: None)
    interrupted = run_score(
        define(
            "os.kill(os.getppid(), signal.SIGINT)\ntime.sleep(0.3)\nreturn 0.5",
            "import os, signal, time",
        ),
        INSTANCE,
        "x",
        limits=LIMITS,
        allow_unisolated=True,
    )
    assert (interrupted.score, interrupted.failure) == (0.5, None), interrupted
    killed = run_score(
        define("os.kill(os.getppid(), signal.SIGKILL)\ntime.sleep(1)", "import os, signal, time"),
        INSTANCE,
        "x",
        limits=LIMITS,
        allow_unisolated=True,
    )
    assert killed.failure == "crashed", killed
    assert "SIGKILL" in killed.detail
