"""Inside the sandbox: lock this process down, then run one untrusted score function.

One file over 400 lines on purpose: it is the whole program of the sandboxed process,
run as ``python -I -S`` (no script folder or site-packages on ``sys.path``) and chrooted
into a root without this package, so it can import nothing but the standard library.

Run only by ``acdc.agents.sandbox`` as ``python -I -S sandbox_child.py`` inside fresh
mount, network, pid, IPC and UTS namespaces. It uses the standard library alone, because
once the new root is in place nothing but the interpreter's own files is visible.

Order matters: leave the caller's session and become undumpable (no ptrace, no
``killpg`` reaching the host's process group), read the request, build a new root from
read-only binds on a tmpfs, chroot into it, drop every privilege and set the resource
limits; only then fork a worker (its own session again) that compiles the untrusted
code. The supervisor owns the outcome pipe and runs no untrusted code. The worker
reports to it on a second pipe that the code can write too (same process), so the
supervisor treats that line as untrusted: it accepts only a finite score or a failure
kind from a closed list (never ``sandbox_error``, which only the supervisor reports) with
a short detail, and anything else becomes ``crashed``. That line is the score code's own
voice (it chooses its score anyway); the supervisor's line to the host is not: the
worker closes that pipe before the code exists, and the run's nonce, which marks the
supervisor's line, is read into a buffer the worker wipes first, so no copy of it is
left in the code's memory.

Signals: the supervisor blocks every signal it can. Isolated, it is pid 1 of its pid
namespace, where SIGKILL and SIGSTOP from inside are dropped by the kernel, so nothing
the code sends ends it; however the worker dies (any signal number), the supervisor
reports it as the code's failure.

Score code gets ``run_submission(source, stdin="", timeout=2.0)``: it runs a subject's
program in a fresh interpreter in its own session, with no descriptor of the worker's
but its own stdin, stdout and stderr, so a submission never shares a process (memory,
pipes) with the grader that scores it.
"""

import contextlib
import ctypes
import json
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import traceback
from typing import Any

_MS_RDONLY = 0x1
_MS_NOSUID = 0x2
_MS_NODEV = 0x4
_MS_NOEXEC = 0x8
_MS_REMOUNT = 0x20
_MS_NOATIME = 0x400
_MS_NODIRATIME = 0x800
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_RELATIME = 0x200000
_SYS_MOUNT_SETATTR = 442  # the same number on every architecture but alpha
_AT_FDCWD = -100
_AT_RECURSIVE = 0x8000
_MOUNT_ATTR_RDONLY_NOSUID_NODEV = 0x1 | 0x2 | 0x4
_PR_CAPBSET_DROP = 24
_PR_SET_DUMPABLE = 4
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_CAPABILITY_VERSION_3 = 0x20080522
_DETAIL_CHARS = 2000
_NONCE_BYTES = 32
_MAX_OUTCOME_BYTES = 16 * 1024
_WORKER_KINDS = ("timeout", "memory", "crashed", "bad_return")
"""Failures the worker may report; ``sandbox_error`` is the supervisor's alone."""
_MAX_SOURCE_BYTES = 100_000  # one argv string may hold 128 KiB on Linux
_MAX_OUTPUT_BYTES = 1024**2
_WORKDIR = "/tmp"
_DEVICES = ("null", "zero", "random", "urandom")
_PYTHON = sys.executable  # replaced by the request's path, valid inside the new root

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
# prctl reads its arguments as unsigned longs; untyped ints could leave garbage high bits.
_libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4


class CpuTimeExceededError(BaseException):
    """Raised from SIGXCPU; a BaseException so ``except Exception`` in user code misses it."""


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            flags,
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def _make_readonly(target: str) -> None:
    """Remount a bind read-only, nosuid, nodev, including any mounts below it."""
    attr = _MountAttr(_MOUNT_ATTR_RDONLY_NOSUID_NODEV, 0, 0, 0)
    done = _libc.syscall(
        ctypes.c_long(_SYS_MOUNT_SETATTR),
        ctypes.c_int(_AT_FDCWD),
        ctypes.c_char_p(target.encode()),
        ctypes.c_uint(_AT_RECURSIVE),
        ctypes.byref(attr),
        ctypes.c_size_t(ctypes.sizeof(attr)),
    )
    if done == 0:
        return
    # Kernels before 5.12 lack mount_setattr: remount the top mount only, restating the
    # flags it already has, because a user namespace may not clear locked ones.
    keep = os.statvfs(target).f_flag
    flags = _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID | _MS_NODEV
    for st_flag, ms_flag in (
        (os.ST_NOEXEC, _MS_NOEXEC),
        (os.ST_NOATIME, _MS_NOATIME),
        (os.ST_NODIRATIME, _MS_NODIRATIME),
        (os.ST_RELATIME, _MS_RELATIME),
    ):
        if keep & st_flag:
            flags |= ms_flag
    _mount(None, target, None, flags)


def _build_root(root: str, binds: list[str], size_bytes: int) -> None:
    """Mount a tmpfs at ``root`` holding read-only binds of ``binds`` and a few devices."""
    _mount("tmpfs", root, "tmpfs", _MS_NOSUID | _MS_NODEV, f"size={size_bytes},mode=0755")
    for path in binds:
        target = root + path
        if os.path.islink(path):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.symlink(os.readlink(path), target)
        elif os.path.isdir(path):
            os.makedirs(target, exist_ok=True)
            _mount(path, target, None, _MS_BIND | _MS_REC)
            _make_readonly(target)
    os.makedirs(root + "/dev", exist_ok=True)
    for name in _DEVICES:
        target = f"{root}/dev/{name}"
        with open(target, "w"):
            pass
        try:
            _mount(f"/dev/{name}", target, None, _MS_BIND)
        except OSError:
            os.unlink(target)  # code that needs /dev/null still runs, just without it
    os.makedirs(root + _WORKDIR, mode=0o700)


def _drop_privileges(uid: int | None) -> None:
    """Leave no capability and no way back: bounding set, ids, then no_new_privs.

    With ``uid`` (the sandbox started as real root) the process becomes that unused uid,
    which also makes RLIMIT_NPROC count; in a user namespace the mapped root keeps its id
    and loses its capabilities instead.
    """
    for cap in range(64):
        if _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # past the last capability this kernel knows
    _libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    header = _CapHeader(_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")
    _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")


def _confine(request: dict[str, Any]) -> None:
    isolate = request["isolate"]
    root = request["root"]
    if isolate is None:
        os.chdir(root)  # unisolated: limits and a scratch folder only
        return
    _build_root(root, isolate["binds"], isolate["tmpfs_bytes"])
    uid = isolate["uid"]
    if uid is not None:
        os.chown(root + _WORKDIR, uid, uid)
    os.chroot(root)
    os.chdir(_WORKDIR)
    _drop_privileges(uid)


def _on_sigxcpu(signum: int, frame: object) -> None:
    raise CpuTimeExceededError


def _detach() -> None:
    """Leave the caller's session and become undumpable.

    So code can neither signal the caller's process group (``killpg(0, ...)``) nor
    ptrace this process or read its memory.
    """
    with contextlib.suppress(OSError):  # already a session leader when run unisolated
        os.setsid()
    _check(_libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(SET_DUMPABLE)")


def _apply_limits(limits: dict[str, int]) -> None:
    """Set the limits in the supervisor, before any untrusted code exists.

    The worker and everything it starts inherit them, and a failure here is reported by
    the supervisor itself, so the worker never needs the ``sandbox_error`` kind.
    RLIMIT_NPROC counts the supervisor too (same uid), hence the ``+ 1``; the host has
    already added the user's other processes when the call runs unisolated.
    """
    cpu = limits["cpu_seconds"]
    # The soft limit raises an exception the worker reports; the hard limit one second
    # later kills code that swallows it.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    for which, value in (
        (resource.RLIMIT_AS, limits["memory_bytes"]),
        (resource.RLIMIT_FSIZE, limits["file_bytes"]),
        (resource.RLIMIT_NPROC, limits["processes"] + 1),
        (resource.RLIMIT_NOFILE, limits["open_files"]),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(which, (value, value))


def _failure(kind: str, detail: str) -> dict[str, Any]:
    return {"ok": False, "kind": kind, "detail": detail[-_DETAIL_CHARS:]}


def run_submission(source: str, stdin: str = "", timeout: float = 2.0) -> dict[str, Any]:
    """Run a subject's Python program in its own process; for score code to call.

    The program runs in a fresh ``python -I -S`` (no memory shared with the grader), in
    a new session, with only its own stdin, stdout and stderr open: it cannot write the
    grader's outcome, read the grader's expected answers, or outlive ``timeout``. It
    inherits the sandbox's limits and counts against its process ceiling, so run one
    at a time. Never raises.

    Args:
        source: The program's source text (at most 100,000 bytes).
        stdin: Text the program reads on its standard input.
        timeout: Wall-clock seconds before the program and its children are killed.

    Returns:
        ``{"stdout": str, "stderr": str, "exit_code": int | None, "timed_out": bool}``;
        ``exit_code`` is None when the program could not start or was killed; output
        past 1 MiB is cut.
    """
    result: dict[str, Any] = {"stdout": "", "stderr": "", "exit_code": None, "timed_out": False}
    try:
        data = str(source).encode()
        if len(data) > _MAX_SOURCE_BYTES or b"\0" in data:
            result["stderr"] = "run_submission: source over 100,000 bytes or with a NUL byte"
            return result
        seconds = max(0.1, min(float(timeout), 60.0))
        with (
            tempfile.TemporaryFile() as in_file,
            tempfile.TemporaryFile() as out_file,
            tempfile.TemporaryFile() as err_file,
        ):
            in_file.write(str(stdin).encode())
            in_file.seek(0)
            process = subprocess.Popen(
                [_PYTHON, "-I", "-S", "-c", data.decode()],
                stdin=in_file,
                stdout=out_file,
                stderr=err_file,
                close_fds=True,
                start_new_session=True,
                env=dict(os.environ),
            )
            try:
                result["exit_code"] = process.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                result["timed_out"] = True
            finally:
                with contextlib.suppress(OSError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            if result["exit_code"] is not None and result["exit_code"] < 0:
                result["exit_code"] = None  # killed by a signal
            for key, handle in (("stdout", out_file), ("stderr", err_file)):
                handle.seek(0)
                result[key] = handle.read(_MAX_OUTPUT_BYTES).decode(errors="replace")
    except Exception as exc:  # e.g. the process ceiling refused the fork
        result["stderr"] = f"run_submission could not run the program: {exc}"
    return result


def _score(code: str, instance: dict[str, Any], submission: str) -> dict[str, Any]:
    """Run the untrusted code and turn whatever happens into an outcome dict."""
    namespace: dict[str, Any] = {"__name__": "score_code", "run_submission": run_submission}
    try:
        exec(compile(code, "<score_code>", "exec"), namespace)
        function = namespace.get("score")
        if not callable(function):
            return _failure("crashed", "score_code defines no callable score(instance, submission)")
        value = function(instance, submission)
    except CpuTimeExceededError:
        return _failure("timeout", "CPU time limit exceeded")
    except MemoryError:
        return _failure("memory", "memory limit exceeded (MemoryError)")
    except BaseException:  # untrusted code may raise anything, SystemExit included
        return _failure("crashed", traceback.format_exc())
    if not isinstance(value, int | float):  # bool counts: True is a pass
        return _failure("bad_return", f"score() returned {type(value).__name__}, not a number")
    try:
        number = float(value)
    except (OverflowError, ValueError) as exc:
        return _failure("bad_return", f"score() returned an unusable number: {exc}")
    if not math.isfinite(number):
        return _failure("bad_return", f"score() returned {number}")
    return {"ok": True, "score": number}


def _outcome_line(outcome: dict[str, Any]) -> bytes:
    return (json.dumps(outcome) + "\n").encode()


def _work(request: dict[str, Any], out_fd: int) -> None:
    """The worker process: run the code, report to the supervisor, exit; never returns."""
    pid = os.getpid()
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, ())  # the supervisor's block is its own
        _detach()
        signal.signal(signal.SIGXCPU, _on_sigxcpu)
        # A write past RLIMIT_FSIZE then fails with an OSError instead of killing silently.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        try:
            outcome = _score(request["code"], request["instance"], request["submission"])
        except CpuTimeExceededError:  # landed just outside _score's own handler
            outcome = _failure("timeout", "CPU time limit exceeded")
        except BaseException:
            outcome = _failure("crashed", traceback.format_exc())
        if os.getpid() == pid:  # processes the code forked return here too; they stay silent
            os.write(out_fd, _outcome_line(outcome))
    finally:
        os._exit(0)


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None; never raises (a 400-digit int overflows)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _validate(raw: bytes) -> dict[str, Any] | None:
    """The worker's line as a clean outcome, or None when it is not one.

    The code shares the worker's process and may have written this line itself, so
    every field is checked: the shape, the types, a finite score, a worker kind, a
    short text detail. Deep nesting raises RecursionError inside ``json``: refused too.
    """
    if raw.count(b"\n") != 1 or not raw.endswith(b"\n"):
        return None
    try:
        outcome = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(outcome, dict) or not isinstance(outcome.get("ok"), bool):
        return None
    if outcome["ok"]:
        if set(outcome) != {"ok", "score"}:
            return None
        score = _number(outcome["score"])
        if score is None:
            return _failure("bad_return", f"invalid score {str(outcome['score'])[:80]!r}")
        return {"ok": True, "score": score}
    kind, detail = outcome.get("kind"), outcome.get("detail")
    if kind not in _WORKER_KINDS or not isinstance(detail, str) or len(outcome) != 3:
        return None
    return _failure(kind, detail)


def _supervise(request: dict[str, Any], result_fd: int, nonce: bytearray) -> dict[str, Any]:
    """Fork the worker and explain how it ended, even when it was killed outright.

    The worker never holds the result pipe nor the nonce (it wipes its copy of the
    buffer before the code is compiled), and the supervisor (pid 1 of the namespace)
    runs no untrusted code, so a SIGKILL at the hard CPU limit is still reported.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        nonce[:] = bytes(len(nonce))
        os.close(read_fd)
        os.close(result_fd)
        _work(request, write_fd)
    os.close(write_fd)
    _, status, usage = os.wait4(pid, 0)
    raw = _drain(read_fd)
    if raw:
        outcome = _validate(raw)
        if outcome is not None:
            return outcome
        return _failure("crashed", "the score code wrote an invalid outcome to the sandbox's pipe")
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        cpu = usage.ru_utime + usage.ru_stime
        if signum in (signal.SIGKILL, signal.SIGXCPU) and cpu >= request["limits"]["cpu_seconds"]:
            return _failure("timeout", f"killed at the CPU time limit after {cpu:.1f} s of CPU")
        return _failure("crashed", f"killed by signal {_signal_name(signum)}")
    code = os.waitstatus_to_exitcode(status)
    return _failure("crashed", f"the score code ended the process with exit status {code}")


def _signal_name(signum: int) -> str:
    """``SIGKILL``, or ``40`` for a number without a name (real-time signals)."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


def _read_nonce(fd: int) -> bytearray:
    """The run's nonce, read straight into a buffer (no immutable copy to outlive a wipe)."""
    buffer = bytearray(_NONCE_BYTES)
    os.readv(fd, [buffer])
    os.close(fd)
    return buffer


def _drain(fd: int) -> bytes:
    """Read what is in the pipe now; stray forked writers must not make us wait."""
    os.set_blocking(fd, False)
    chunks: list[bytes] = []
    try:
        while sum(len(c) for c in chunks) < _MAX_OUTCOME_BYTES:
            chunk = os.read(fd, _MAX_OUTCOME_BYTES)
            if not chunk:
                break
            chunks.append(chunk)
    except BlockingIOError:
        pass
    os.close(fd)
    return b"".join(chunks)[:_MAX_OUTCOME_BYTES]


def main() -> None:
    """Read the request from stdin, run it, write one JSON line to the result pipe."""
    global _PYTHON
    # Before any untrusted code exists: nothing the code sends (SIGINT raised
    # KeyboardInterrupt here) may end the supervisor. SIGKILL and SIGSTOP cannot be
    # blocked; inside the pid namespace the kernel drops them for pid 1.
    signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    request = json.loads(sys.stdin.buffer.read())
    result_fd = int(request["result_fd"])
    nonce = _read_nonce(int(request["nonce_fd"]))
    _PYTHON = request["python"]
    try:
        _confine(request)
        _detach()  # after the uid switch, which resets the dumpable flag
        _apply_limits(request["limits"])
    except BaseException:
        outcome = _failure("sandbox_error", "setup failed: " + traceback.format_exc())
    else:
        try:
            outcome = _supervise(request, result_fd, nonce)
        except BaseException:  # a bug here, not the code's doing: say so
            outcome = _failure("sandbox_error", "supervisor failed: " + traceback.format_exc())
    outcome["nonce"] = nonce.decode("ascii", "replace")
    os.write(result_fd, _outcome_line(outcome))
    os.close(result_fd)


if __name__ == "__main__":
    main()
