"""Run untrusted ``score(instance, submission)`` code in an isolated, limited subprocess.

Generated task code never runs in the main process (DESIGN.md section 6). Each call
starts ``python -I -S agents/sandbox_child.py`` under ``unshare`` (util-linux, present
on every Linux system) in new mount, network, pid, IPC and UTS namespaces. The child
builds a new root on a tmpfs holding only read-only binds of the interpreter's files,
chroots into it, drops every privilege and sets CPU, memory, file-size, process and
open-file limits before it compiles the code. So the code sees no network (only a
downed loopback), no host files beyond the interpreter, no environment but a minimal
PATH, and an empty scratch folder that vanishes with it. The host kills the process
group at the wall-clock limit; the pid namespace takes every forked process with it.

Mechanisms, tried once per process and cached, first that works wins:
``unshare`` as real root (the child then runs as a random unused uid, so RLIMIT_NPROC
applies) and ``unshare --user --map-root-user`` (unprivileged user namespaces). With
neither, :func:`run_score` refuses unless the caller passes ``allow_unisolated=True``,
which keeps the limits and the scrubbed environment but not the isolation.

The supervisor and the worker each leave the caller's session and are undumpable, so
the code can neither ``killpg`` the host's process group nor ptrace its supervisor.
The supervisor blocks every signal and, isolated, is pid 1 of its namespace, so no
signal the code (or a program it runs) sends can end it: whatever the code does ends
as the code's own failure, never ``sandbox_error``. The supervisor's line reaches the
host on a pipe the worker closes before the code exists, marked with a per-call nonce
that travels on a pipe of its own and that the worker wipes from its memory first.
All text that comes back is valid UTF-8 (``agents/sandbox_outcome.py``).
One memory and process ceiling holds for the whole call tree: a cgroup per call where
one can be made (:mod:`acdc.agents.sandbox_cgroup`), else per-process limits with at
most ``processes`` (2) processes. Everything the child reports is validated as
untrusted input (``agents/sandbox_outcome.py``): :func:`run_score` never raises, whatever
the child writes or however it dies.
"""

import contextlib
import functools
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acdc.agents import sandbox_cgroup
from acdc.agents.sandbox_outcome import DETAIL_CHARS, Isolation, SandboxResult, interpret

logger = logging.getLogger(__name__)

CHILD = Path(__file__).resolve().with_name("sandbox_child.py")
_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp", "TMPDIR": "/tmp"}
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_MAX_RESULT_BYTES = 64 * 1024
_PROBE_CODE = "def score(instance, submission):\n    return 0.5\n"


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one sandboxed call; small, since a score function is cheap.

    Attributes:
        cpu_seconds: RLIMIT_CPU; a SIGXCPU at this limit, SIGKILL one second later.
        wall_seconds: Wall-clock limit; the whole process tree is killed after it.
        memory_bytes: RLIMIT_AS of each process, and the memory ceiling of the whole
            call tree where a cgroup is available.
        file_bytes: RLIMIT_FSIZE, the largest file the code may write.
        processes: Processes and threads the code may run at once, the worker included
            (2: the worker and one ``run_submission`` program). Enforced by the cgroup's
            pids.max, else RLIMIT_NPROC (which does not bind global root in a user
            namespace, see the module doc).
        open_files: RLIMIT_NOFILE.
        tmpfs_bytes: Size of the tmpfs holding the new root and the scratch folder.
    """

    cpu_seconds: int = 5
    wall_seconds: float = 15.0
    memory_bytes: int = 512 * 1024**2
    file_bytes: int = 1024**2
    processes: int = 2
    open_files: int = 64
    tmpfs_bytes: int = 16 * 1024**2


class SandboxUnavailableError(RuntimeError):
    """No isolation mechanism works here and the caller did not allow unisolated runs."""


def run_score(
    code: str,
    instance: dict[str, Any],
    submission: str,
    *,
    limits: SandboxLimits | None = None,
    allow_unisolated: bool = False,
) -> SandboxResult:
    """Run ``score(instance, submission)`` from ``code`` in the sandbox.

    Args:
        code: Python source defining ``score(instance: dict, submission: str) -> float``;
            it may import only the standard library.
        instance: The task instance as a JSON-able dict.
        submission: The subject's full response text.
        limits: Resource limits; the defaults of :class:`SandboxLimits` if None.
        allow_unisolated: Run with limits but without isolation when no mechanism
            works. Only for trusted code, e.g. hand-written seed tasks on a dev machine.

    Returns:
        The score in [0, 1], or a failure with its reason. Never raises, whatever the
        code does or the child writes.
    """
    limits = limits or SandboxLimits()
    try:
        return _run_score(code, instance, submission, limits, allow_unisolated)
    except Exception as exc:  # the contract is "never raises": a bug here is a failure
        logger.exception("sandbox: unexpected error")
        return SandboxResult(None, "sandbox_error", f"sandbox error: {exc!r}"[:DETAIL_CHARS], None)


def _run_score(
    code: str,
    instance: dict[str, Any],
    submission: str,
    limits: SandboxLimits,
    allow_unisolated: bool,
) -> SandboxResult:
    mode = isolation()
    if mode is None and not allow_unisolated:
        return SandboxResult(
            None,
            "not_isolated",
            "no sandbox isolation works on this machine (tried unshare with and without a "
            "user namespace); refusing to run generated code. Enable unprivileged user "
            "namespaces or run as root, or pass allow_unisolated=True for trusted code.",
            None,
        )
    return _run(mode, code, instance, submission, limits)


def isolation() -> Isolation | None:
    """The first isolation mechanism that runs a trivial score function here, or None."""
    modes = isolation_modes()
    return modes[0] if modes else None


@functools.cache
def isolation_modes() -> tuple[Isolation, ...]:
    """Every isolation mechanism that runs a trivial score function here, best first."""
    if shutil.which("unshare") is None:
        logger.warning("sandbox: no unshare binary on PATH; generated code cannot be isolated")
        return ()
    candidates: list[Isolation] = ["unshare-userns"]
    if os.geteuid() == 0:
        candidates.insert(0, "unshare")
    working: list[Isolation] = []
    for mode in candidates:
        result = _run(mode, _PROBE_CODE, {}, "", SandboxLimits(cpu_seconds=5, wall_seconds=20))
        if result.score == 0.5:
            working.append(mode)
        else:
            logger.info(
                "sandbox: %s does not work here: %s %s", mode, result.failure, result.detail
            )
    if not working:
        logger.warning("sandbox: no isolation mechanism works on this machine")
    elif working[0] == "unshare-userns" and os.geteuid() == 0 and sandbox_cgroup.layout() is None:
        logger.warning(
            "sandbox: running as root without CAP_SYS_ADMIN or a cgroup; RLIMIT_NPROC cannot "
            "bind global root, so only the wall-clock limit stops a fork bomb"
        )
    else:
        logger.info("sandbox: isolating generated code with %s", working[0])
    return tuple(working)


def _binds() -> list[str]:
    """Host paths the child needs: system library folders and the interpreter's prefix."""
    wanted = sorted({*_SYSTEM_DIRS, sys.base_prefix, sys.base_exec_prefix})
    kept: list[str] = []
    for path in wanted:
        if not os.path.lexists(path):
            continue
        if any(path.startswith(parent + "/") for parent in kept):
            continue  # a recursive bind of the parent already holds it
        kept.append(path)
    return kept


def _command(mode: Isolation | None) -> list[str]:
    python = [sys.executable, "-I", "-S", str(CHILD)]
    if mode is None:
        return python
    flags = ["--mount", "--net", "--pid", "--ipc", "--uts", "--kill-child"]
    if mode == "unshare-userns":
        flags += ["--user", "--map-root-user"]
    return [shutil.which("unshare") or "unshare", *flags, "--", *python]


def _run(
    mode: Isolation | None,
    code: str,
    instance: dict[str, Any],
    submission: str,
    limits: SandboxLimits,
) -> SandboxResult:
    nonce = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="acdc-sandbox-") as root:
        read_fd, write_fd = os.pipe()
        # The nonce travels apart from the request, which the worker keeps in memory.
        nonce_fd, nonce_write = os.pipe()
        os.write(nonce_write, nonce.encode())
        os.close(nonce_write)
        isolate = None
        if mode is not None:
            # A fresh uid per call: nothing on the host belongs to it, and its process
            # count (RLIMIT_NPROC) is not shared with any other sandbox.
            uid = 100_000 + secrets.randbelow(1 << 30) if mode == "unshare" else None
            isolate = {"binds": _binds(), "uid": uid, "tmpfs_bytes": limits.tmpfs_bytes}
        request = {
            "nonce_fd": nonce_fd,
            "code": code,
            "instance": instance,
            "submission": submission,
            "limits": {
                "cpu_seconds": limits.cpu_seconds,
                "memory_bytes": limits.memory_bytes,
                "file_bytes": limits.file_bytes,
                "processes": limits.processes + _processes_outside(mode),
                "open_files": limits.open_files,
            },
            "result_fd": write_fd,
            "python": os.path.realpath(sys.executable),  # the venv's link is not in the new root
            "root": root,
            "isolate": isolate,
        }
        env = dict(_ENV, HOME=root, TMPDIR=root) if mode is None else dict(_ENV)
        group = _call_group(limits, mode)
        command = _command(mode)
        if group is not None:
            command = [
                "/bin/sh",
                "-c",
                sandbox_cgroup.JOIN_SCRIPT,
                "sh",
                *group.procs_files,
                "--",
                *command,
            ]
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(write_fd, nonce_fd),
                env=env,
                cwd=root,
                start_new_session=True,  # its own process group, killed as one
            )
        except OSError as exc:
            os.close(read_fd)
            if group is not None:
                group.close()
            return SandboxResult(None, "sandbox_error", f"cannot start the sandbox: {exc}", mode)
        finally:
            os.close(write_fd)
            os.close(nonce_fd)
        try:
            timed_out = _wait(process, json.dumps(request).encode(), limits.wall_seconds)
            raw = _drain(read_fd)
            out_of_memory = group is not None and group.oom_killed()
        finally:
            if group is not None:
                group.close()
    if timed_out:
        return SandboxResult(
            None, "timeout", f"wall-clock limit of {limits.wall_seconds:g} s exceeded", mode
        )
    result = interpret(raw, nonce, process.returncode, mode)
    if out_of_memory and not result.ok:
        ceiling = f"{limits.memory_bytes / 1024**2:g} MiB"
        return SandboxResult(
            None, "memory", f"the call went over its memory ceiling of {ceiling}", mode
        )
    return result


def _processes_outside(mode: Isolation | None) -> int:
    """Processes RLIMIT_NPROC counts that are not the call's own.

    Isolated, the child runs as a fresh uid or in its own user namespace, where the count
    starts at zero. Unisolated, it counts every process of this user on the host, so the
    limit is raised by their number (as root it binds nothing anyway).
    """
    if mode is not None or os.geteuid() == 0:
        return 0
    uid, count = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                count += os.stat(entry.path).st_uid == uid
    return count


def _call_group(limits: SandboxLimits, mode: Isolation | None) -> sandbox_cgroup.CallGroup | None:
    """A cgroup holding the call's memory and process ceiling, or None where there is none.

    ``pids.max`` also counts the supervisor and, when isolated, the ``unshare`` process.
    """
    found = sandbox_cgroup.layout()
    if found is None:
        return None
    overhead = 1 if mode is None else 2
    try:
        return sandbox_cgroup.CallGroup(found, limits.memory_bytes, limits.processes + overhead)
    except OSError as exc:
        logger.warning("sandbox: cannot make the call's cgroup (%s); per-process limits only", exc)
        return None


def _wait(process: subprocess.Popen[bytes], request: bytes, wall_seconds: float) -> bool:
    """Send the request and wait; kill the whole process group at the limit."""
    try:
        process.communicate(request, timeout=wall_seconds)
        return False
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return True


def _drain(fd: int) -> bytes:
    """Read what the child left in the result pipe without waiting for stray writers.

    A process the code forked may outlive the runner when there is no pid namespace and
    keep the pipe open; a blocking read would then hang the caller.
    """
    os.set_blocking(fd, False)
    chunks: list[bytes] = []
    size = 0
    try:
        while size < _MAX_RESULT_BYTES:
            chunk = os.read(fd, _MAX_RESULT_BYTES - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except BlockingIOError:
        pass
    finally:
        os.close(fd)
    return b"".join(chunks)
